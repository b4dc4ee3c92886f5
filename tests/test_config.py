"""Config validation: every bad value is one line naming the field."""

import os
import re

import pytest

from rlx import presets
from rlx.config import ConfigError, apply_assignments, load_yaml, parse_assignment, unread_fields
from rlx.driver import build_config, unread_settings
from rlx.envs import parse_env_spec


def error_of(data):
    with pytest.raises(ConfigError) as info:
        build_config(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_build():
    config = build_config({})
    assert config.algo == "ppo" and config.env.name == "gymnax/CartPole-v1"
    assert config.agent.num_envs == 16


@pytest.mark.parametrize(
    "data,expected",
    [
        ({"agent": {"learning_rat": 1e-3}}, "agent.learning_rat: unknown field (did you mean agent.learning_rate?)"),
        ({"agent": {"num_envs": "many"}}, "agent.num_envs: expected an integer, got 'many'"),
        ({"agent": {"num_envs": 0}}, "agent.num_envs: must be > 0; got 0"),
        ({"agent": {"gamma": 1.5}}, "agent.gamma: must be >= 0 and <= 1; got 1.5"),
        ({"agent": {"learning_rate": -1}}, "agent.learning_rate: must be > 0; got -1.0"),
        (
            {"agent": {"policy": {"activation": "sigmoid"}}},
            "agent.policy.activation: must be one of tanh, relu, swish, elu, gelu, mish; got 'sigmoid'",
        ),
        ({"agent": {"policy": {"hidden": [64, 0]}}}, "agent.policy.hidden: must be > 0; got (64, 0)"),
        ({"agent": {"policy_hidden": [64]}}, "agent.policy_hidden: moved to agent.policy.hidden"),
        (
            {"agent": {"value": {"residual": True, "hidden": [64, 32]}}},
            "agent.value.residual: needs equal hidden widths",
        ),
        ({"agent": {"policy": {"dropout": 0.1}}}, "agent.policy.dropout: must be 0 here"),
        (
            {"agent": {"policy": {"hidden": [], "recurrent": "gru"}}},  # an IndexError after --overwrite before
            "agent.policy.hidden: a recurrent network needs at least one layer",
        ),
        ({"agent": []}, "agent: expected a mapping of ppo's fields"),  # the algorithm's defaults, silently, before
        ({"agent": None}, "agent: expected a mapping of ppo's fields"),
        ({"agent": {"value": {"norm": "batch_renorm"}}}, "agent.value.norm: batch_renorm is not supported here"),
        (
            {"algo": "sac", "agent": {"critic": {"value": "c51", "num_bins": 1}}},
            "agent.critic.num_bins: must be >= 2; got 1",
        ),
        (
            {"algo": "sac", "agent": {"critic": {"value": "hl_gauss", "v_min": 1, "v_max": 0}}},
            "agent.critic.v_max: must be > v_min = 1; got 0",
        ),
        ({"algo": "sac", "agent": {"actor": {"squash": "clip"}}}, "agent.actor.squash: SAC needs tanh"),
        (
            {"algo": "crossq", "agent": {"actor": {"distribution": "bernoulli"}}},
            "agent.actor.distribution: CrossQ needs gaussian (actions it can backpropagate through); got bernoulli",
        ),
        (
            {"algo": "sac", "agent": {"actor": {"distribution": "gaussian_mixture"}}},
            "agent.actor.distribution: SAC needs gaussian or bernoulli (actions it can backpropagate through); got "
            "gaussian_mixture",
        ),
        (
            {"algo": "sac", "agent": {"actor": {"distribution": "bernoulli"}}},
            "agent.target_entropy_per_dim: a Bernoulli actor needs a value in (0, log 2 = 0.693); got -1.0",
        ),
        (
            {"algo": "sac", "agent": {"bang_bang_gradient": "straight_through"}},
            "agent.bang_bang_gradient: straight_through needs agent.actor.distribution bernoulli; got gaussian",
        ),
        (
            {"algo": "sac", "agent": {"actor": {"distribution": "bernoulli"}, "target_entropy": -2.0}},
            "agent.target_entropy: a Bernoulli actor needs > 0; got -2.0",
        ),
        (
            {
                "algo": "mdpo_offpolicy",
                "agent": {"actor": {"distribution": "bernoulli"}, "target_entropy_per_dim": 0.3},
            },
            "agent.actor.distribution: off-policy MDPO needs gaussian; got bernoulli",
        ),
        (
            {"algo": "mdpo", "agent": {"policy": {"distribution": "gaussian_mixture"}}},
            "agent.policy.distribution: MDPO needs a closed-form KL (gaussian or bernoulli); got gaussian_mixture",
        ),
        (
            {"algo": "consistency_ac", "agent": {"sigma_last": 100.0}},
            "agent.sigma_last: must lie between sigma_min = 0.002 and sigma_max = 80; got 100",
        ),
        (  # an odd width used one feature less
            {"algo": "consistency_ac", "agent": {"time_embedding": 7}},
            "agent.time_embedding: must be even (a sine and a cosine per frequency); got 7",
        ),
        (  # accepted and never applied until 2026-12-04
            {"algo": "iterated_dqn", "agent": {"q": {"dropout": 0.3}}},
            "agent.q.dropout: must be 0 (i-DQN's heads are deterministic); got 0.3",
        ),
        (
            {"algo": "mdpo", "agent": {"clip_epsilon": 0.2}},
            "agent.clip_epsilon: unknown field",
        ),
        (
            {"agent": {"policy": {"distribution": "beta"}}},
            "agent.policy.distribution: must be one of gaussian, bernoulli, gaussian_mixture; got 'beta'",
        ),
        ({"algo": "td3", "agent": {"critic_hidden": [64]}}, "agent.critic_hidden: moved to agent.critic.hidden"),
        ({"algo": "dqn", "agent": {"value_loss": "c51"}}, "agent.value_loss: moved to agent.q.value"),
        ({"agent": {"normalize_observations": "yes"}}, "agent.normalize_observations: expected true or false"),
        (
            {"agent": {"num_envs": 3, "unroll_length": 5, "num_minibatches": 2}},
            "agent.num_minibatches: must divide num_envs*unroll_length = 15; got 2",
        ),
        ({"algo": "dreamer"}, "algo: unknown algorithm 'dreamer'; available: ppo, sac, td3, dqn"),
        ({"seeds": 3}, "seeds: unknown field (did you mean seed?)"),
        ({"total_env_steps": -5}, "total_env_steps: must be > 0; got -5"),
        (
            {"env": {"name": "CartPole-v1"}},
            "env.name: expected 'suite/name' with suite one of brax, gymnax, jumanji, playground",
        ),
        (
            {"env": {"name": "gymnax/CartPole-v1", "action_repeat": 0}},
            "env.action_repeat: must be > 0 and < 2147483648; got 0",
        ),
    ],
)
def test_bad_values_name_the_field(data, expected):
    assert expected in error_of(data)


def test_numbers_from_yaml_strings_and_cli_assignments(capsys):
    config = build_config({"agent": {"learning_rate": "3e-4"}})  # YAML 1.1 reads 3e-4 as a string
    assert config.agent.learning_rate == pytest.approx(3e-4)
    budget = build_config({"total_env_steps": "1e6", "agent": {"num_envs": "1.6e1"}})  # were "expected an integer"
    assert budget.total_env_steps == 1_000_000 and type(budget.total_env_steps) is int and budget.agent.num_envs == 16
    from rlx import cli

    assert cli.main(["train", "ppo", "--steps", "2.5e3", "--print-config"]) == 0  # --steps too
    assert "total_env_steps: 2500\n" in capsys.readouterr().out
    for bad in ("1.5e0", "inf", "nan", "1e", "16 envs"):
        with pytest.raises(ConfigError, match=f"^agent.num_envs: expected an integer, got '{bad}'$"):
            build_config({"agent": {"num_envs": bad}})
    assert parse_assignment("agent.learning_rate=1e-3") == {"agent": {"learning_rate": "1e-3"}}
    assert parse_assignment("agent.policy.hidden=[32, 32]") == {"agent": {"policy": {"hidden": [32, 32]}}}
    assert parse_assignment("seed=3") == {"seed": 3}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignment("seed")
    assert apply_assignments({"seed": 0, "agent": {"gamma": 0.9}}, ["agent.policy={hidden: [8]}", "seed=2"]) == {
        "seed": 2,
        "agent": {"gamma": 0.9, "policy": {"hidden": [8]}},
    }
    with pytest.raises(ConfigError, match=r"^--set seed: given twice \('seed=1' and ' seed =2'\); keep one$"):
        apply_assignments({}, ["seed=1", "agent.learning_rate=1e-3", " seed =2"])  # was last-wins
    for order in (
        ["agent.policy={hidden: [8]}", "agent.policy.hidden=[16]"],
        ["agent.policy.hidden=[16]", "agent.policy={}"],
    ):
        with pytest.raises(ConfigError, match="^--set agent.policy.hidden: is inside agent.policy, which is also set"):
            apply_assignments({}, order)  # the result depended on the order


def test_env_spec_query_string():
    assert parse_env_spec("brax/ant?backend=mjx&episode_length=500") == {
        "name": "brax/ant",
        "backend": "mjx",
        "episode_length": 500,
    }
    with pytest.raises(
        ConfigError, match=r"env option 'bakend' in 'brax/ant\?bakend=mjx': unknown \(did you mean backend\?\)"
    ):
        parse_env_spec("brax/ant?bakend=mjx")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("brax/hoper", "unknown brax env (did you mean brax/hopper?); available: ant,"),
        ("gymnax/CartPol-v1", "unknown gymnax env (did you mean gymnax/CartPole-v1?); available:"),
        ("brax/zzzz", "unknown brax env; available:"),
    ],
)
def test_a_misspelt_env_name_gets_the_closest_one(name, hint):
    from rlx.envs import make

    with pytest.raises(ConfigError, match=re.escape(f"env {name}: {hint}")):
        make(name)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "one of brax, gymnax, jumanji, playground, probe; got 'brx/hopper' (did you mean brax/hopper?)"
        ),
    ):
        make("brx/hopper")


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3", "dqn", "crossq"])
def test_traced_fields_are_exactly_the_hyperparams_in_the_state(algo):
    import jax

    from rlx import driver
    from rlx.algos import ALGORITHMS
    from rlx.config import traced_fields

    config = build_config(
        {
            "algo": algo,
            "env": {"name": "gymnax/CartPole-v1" if algo in ("ppo", "dqn") else "gymnax/Pendulum-v1"},
            "agent": {"max_grad_norm": 1.0},
        }
    )
    state = jax.eval_shape(driver.Experiment(config).init_fn, jax.random.PRNGKey(0))
    # optional traced fields left null (off; e.g. weight_decay) are not in the state, set ones are
    on = tuple(f for f in traced_fields(ALGORITHMS[algo].Config) if getattr(config.agent, f) is not None)
    assert "max_grad_norm" in on and tuple(state.hparams.as_dict()) == on


def test_a_nested_section_keeps_the_algorithms_defaults_for_fields_not_given():
    config = build_config({"agent": {"policy": {"hidden": [8]}}})
    assert config.agent.policy.hidden == (8,) and config.agent.policy.activation == "tanh"  # PPO's, not Net's relu
    assert config.agent.policy.output_scale == 0.01


@pytest.mark.parametrize(
    "name",
    sorted(
        f
        for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "configs"))
        if f.endswith(".yaml") and not f.startswith("_")
    ),
)
def test_every_preset_is_valid(name):
    config = build_config(presets.load_file(os.path.join(os.path.dirname(__file__), "..", "configs", name)))
    presets_of = ("ppo", "sac", "td3", "dqn", "iqn")  # a2c, droq, ddpg, c51, miqn: presets of these
    assert name.startswith(config.algo) or config.algo in presets_of
    assert unread_settings(config) == []  # no preset sets a field its other settings leave unread


def test_fields_the_other_settings_leave_unread_are_named_with_why():
    """read_with: a field read only under some settings of its section's other fields (a dotted path reaches a
    nested one). A value set away from its default that does nothing is a note (it was accepted silently)."""
    sac = build_config({"algo": "sac", "env": {"name": "gymnax/Pendulum-v1"}})
    unread = unread_fields(sac)
    assert unread["agent.critic.renorm_momentum"] == "read only with norm: batch_renorm; norm is none"
    assert (
        unread["agent.actor.num_components"]
        == "read only with distribution: gaussian_mixture; distribution is gaussian"
    )
    assert unread["agent.actor.min_std"] == "read only with std: softplus; std is log_range"
    assert (
        unread["agent.bang_bang_gradient"]
        == "read only with actor.distribution: bernoulli; actor.distribution is gaussian"
    )
    assert unread["logging.project"] == "read only with wandb: true; wandb is false"
    assert "agent.actor.log_std_min" not in unread and "agent.alpha_learning_rate" not in unread
    assert unread_settings(sac) == []  # every unread field is at its default
    data = {
        "algo": "sac",
        "env": {"name": "gymnax/Pendulum-v1"},
        "agent": {
            "critic": {"renorm_momentum": 0.9, "renorm_warmup": 10},
            "autotune_alpha": False,
            "target_entropy": -2.0,
            "obs_norm_clip": None,
        },
        "logging": {"project": "mine"},
    }
    assert unread_settings(build_config(data)) == [  # in the config's field order
        "logging.project=mine is never read: read only with wandb: true; wandb is false",
        "agent.obs_norm_clip=null is never read: read only with normalize_observations: true; "
        "normalize_observations is false",
        "agent.critic.renorm_momentum=0.9 is never read: read only with norm: batch_renorm; norm is none",
        "agent.critic.renorm_warmup=10 is never read: read only with norm: batch_renorm; norm is none",
        "agent.target_entropy=-2 is never read: read only with autotune_alpha: true; autotune_alpha is false",
    ]
    # the first unmet condition is named; defaults are the algorithm's (CrossQ's critic has batch renorm)
    data["agent"]["target_entropy"] = None
    data["agent"]["target_entropy_per_dim"] = -0.5
    assert (
        "agent.target_entropy_per_dim=-0.5 is never read: read only with autotune_alpha: true; autotune_alpha is false"
        in (unread_settings(build_config(data)))
    )
    crossq = {"algo": "crossq", "env": {"name": "gymnax/Pendulum-v1"}, "agent": {"critic": {"renorm_momentum": 0.9}}}
    assert unread_settings(build_config(crossq)) == []
    ppo = {"algo": "ppo", "env": {"name": "gymnax/Pendulum-v1"}, "agent": {"policy": {"num_components": 8}}}
    assert unread_settings(build_config(ppo)) == [
        "agent.policy.num_components=8 is never read: read only with distribution: gaussian_mixture; "
        "distribution is gaussian"
    ]
    ppo["agent"]["policy"]["distribution"] = "gaussian_mixture"
    assert unread_settings(build_config(ppo)) == []
    # on discrete actions a policy's box fields are all unread (min_std's note named std: log_range, which does
    # nothing there either, and squash or std had none; a probe)
    from rlx.driver import Experiment

    box = {"policy": {"min_std": 0.5, "squash": "clip", "std": "log_range"}}
    why = "is never read: gymnax/CartPole-v1 has discrete actions, which take a categorical policy"
    assert Experiment(build_config({"algo": "ppo", "agent": box})).notes == [
        f"agent.policy.min_std=0.5 {why}",
        f"agent.policy.squash=clip {why}",
        f"agent.policy.std=log_range {why}",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "algo: dqn\nagent: {learning_rate: 1.0e-3}\nagent:\n  num_envs: 4\n",
            "invalid YAML (key 'agent' given twice (line 3))",
        ),
        ("agent:\n  q: {hidden: [64], hidden: [32]}\n", "invalid YAML (key 'hidden' given twice (line 2))"),
        ("agent: {num_envs: 4\n", "invalid YAML (while parsing a flow mapping)"),
        ("- algo\n", "expected a mapping at top level"),
    ],
)
def test_a_malformed_config_file_is_a_one_line_error_and_a_repeated_key_is_one(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(str(path))
    assert str(info.value) == f"--config {path}: {message}"
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml(str(tmp_path / "missing.yaml"))


def test_yaml_merge_keys_may_be_overridden_without_counting_as_repeats(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "net: &net {hidden: [64, 64], activation: relu}\nagent:\n  critic:\n    <<: *net\n    hidden: [32]\n"
    )
    assert load_yaml(str(path))["agent"]["critic"] == {"hidden": [32], "activation": "relu"}


def test_rlx_loads_its_submodules_on_first_use():
    """``import rlx`` then ``rlx.sweep.spec_from_dict`` / ``rlx.stats.iqm`` (the README's spelling) work without
    importing each submodule first; an unknown name is an AttributeError."""
    import importlib

    import rlx

    for name in ("driver", "sweep", "stats", "plot", "compare", "inference", "presets"):
        assert getattr(rlx, name) is importlib.import_module(f"rlx.{name}") and name in dir(rlx)
    assert callable(rlx.sweep.spec_from_dict) and callable(rlx.stats.iqm)
    with pytest.raises(AttributeError, match="module 'rlx' has no attribute 'nope'"):
        rlx.nope  # noqa: B018
