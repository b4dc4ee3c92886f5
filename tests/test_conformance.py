"""Conformance tests over the algorithm registry: every registered algorithm must pass all of them, and
registering one without an entry in ``SETTINGS`` fails ``test_every_registered_algorithm_has_settings``.

- ``train_step`` jits and returns a state of the same structure, shapes, dtypes and weak types as ``init``'s (a
  weakly typed leaf that comes out strong made a jitted chunk trace and compile again on its second call);
- ``act`` respects the action space (bounds, dtype) on every action space the algorithm supports;
- vmapped seeds and traced hyperparameters equal single runs (to float32 round-off, see README: Sweeps);
- a checkpoint round trip is exact and a run resumed from it equals the uninterrupted run, bit for bit;
- probe envs (``rlx.envs.probes``) with known values: one compiled program, vmapped over the five probes,
  must reach the analytic values and optimal actions.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_resumes_bitwise

from rlx import driver, inference
from rlx.algos import ALGORITHMS
from rlx.config import ConfigError, traced_fields
from rlx.envs import PROBES, ProbeEnv, make

GAMMA = 0.9  # probes' discount: V(first obs of the discount probe) = 0.9


@dataclasses.dataclass(frozen=True)
class Setting:
    env: str  # a small env for the structural tests
    agent: dict  # tiny networks and budgets for the structural tests
    probe_agent: dict  # settings that solve the probes quickly
    probe_steps: int  # env steps per probe run
    probe_box: bool  # probe with one box action (else two discrete actions)
    tolerance: float = 0.1  # allowed error of values (and, x1.5, of box actions)


# every network is reset every 32 gradient steps, so resets fall in both chunks of the shared experiments
OFF_POLICY_SMALL = {"num_envs": 2, "batch_size": 16, "learning_starts": 32, "buffer_size": 256, "reset_every": 32}
IQN_FRACTIONS = {"num_tau_samples": 8, "num_tau_prime_samples": 8, "num_quantile_samples": 8}
OFF_POLICY_PROBE = {"num_envs": 4, "batch_size": 64, "learning_starts": 256, "buffer_size": 4096, "gamma": GAMMA}

SETTINGS = {
    "ppo": Setting(
        "gymnax/CartPole-v1",
        {
            "num_envs": 4,
            "unroll_length": 16,
            "num_minibatches": 2,
            "num_epochs": 2,
            "policy": {"hidden": [16]},
            "value": {"hidden": [16]},
        },
        {
            "num_envs": 16,
            "unroll_length": 8,
            "num_minibatches": 2,
            "num_epochs": 4,
            "learning_rate": 3e-3,
            "entropy_coef": 0.0,
            "gamma": GAMMA,
            "normalize_observations": False,
            "policy": {"hidden": [16]},
            "value": {"hidden": [16]},
        },
        20_000,
        False,
    ),
    "sac": Setting(
        "gymnax/Pendulum-v1",
        {
            **OFF_POLICY_SMALL,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
            "reset": ["actor", "critic", "temperature"],
        },
        {
            **OFF_POLICY_PROBE,
            "autotune_alpha": False,
            "initial_alpha": 1e-3,
            "actor_learning_rate": 3e-3,
            "critic_learning_rate": 3e-3,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
        },
        3_000,
        True,
    ),
    "consistency_ac": Setting(
        "gymnax/Pendulum-v1",
        {
            **OFF_POLICY_SMALL,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
            "num_steps": 2,
            "num_candidates": 4,
            "ema_start": 8,
            "reset": ["actor", "critic"],
            "replay": "prioritized",
        },
        {
            **OFF_POLICY_PROBE,
            "actor_learning_rate": 3e-4,
            "critic_learning_rate": 3e-3,
            "ema_start": 0,
            "ema_every": 1,
            "ema_decay": 0.9,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
        },
        3_000,
        True,
    ),
    "td3": Setting(  # prioritized replay, as most off-policy settings here: priorities vmapped, resumed, probed
        "gymnax/Pendulum-v1",
        {
            **OFF_POLICY_SMALL,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
            "reset": ["actor", "critic"],
            "replay": "prioritized",
        },
        {
            **OFF_POLICY_PROBE,
            "replay": "prioritized",
            "actor_learning_rate": 3e-3,
            "critic_learning_rate": 3e-3,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
        },
        3_000,
        True,
    ),
    "crossq": Setting(
        "gymnax/Pendulum-v1",
        {
            **OFF_POLICY_SMALL,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
            "reset": ["actor", "critic", "temperature"],
            "replay": "prioritized",
        },
        {
            **OFF_POLICY_PROBE,
            "policy_delay": 1,
            "initial_alpha": 0.1,
            "actor_learning_rate": 3e-3,
            "critic_learning_rate": 3e-3,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
        },
        5_000,
        True,
        # Evaluation mode normalizes with running batch statistics, which lag the training batches: measured
        # value errors up to 0.08 and action errors up to 0.09 (5k steps; with a fixed small alpha the policy
        # stops exploring and the action probe settles at 0.6).
        tolerance=0.15,
    ),
    "pqn": Setting(
        "gymnax/CartPole-v1",
        {"num_envs": 4, "unroll_length": 16, "num_minibatches": 2, "num_epochs": 2, "q": {"hidden": [16]}},
        {
            "num_envs": 16,
            "unroll_length": 8,
            "num_minibatches": 2,
            "num_epochs": 4,
            "learning_rate": 3e-3,
            "lr_schedule": "constant",
            "reward_scaling": 1.0,
            "gamma": GAMMA,
            "q": {"hidden": [16]},
        },
        20_000,
        False,
    ),
    "iterated_dqn": Setting(
        "gymnax/CartPole-v1",
        {
            **OFF_POLICY_SMALL,
            "q": {"hidden": [16]},
            "reset": ["q"],
            "iterations": 2,
            "rolling_period": 8,
            "replay": "prioritized",
        },
        {
            **OFF_POLICY_PROBE,
            "replay": "prioritized",
            "learning_rate": 3e-3,
            "iterations": 2,
            "target_sync_period": 4,
            "rolling_period": 40,
            "exploration_fraction": 0.3,
            "q": {"hidden": [16]},
        },
        3_000,
        False,
    ),
    "iqn": Setting(  # with prioritized replay: its state (priorities) is vmapped, checkpointed and resumed here too
        "gymnax/CartPole-v1",
        {**OFF_POLICY_SMALL, "q": {"hidden": [16, 16]}, "reset": ["q"], "replay": "prioritized", **IQN_FRACTIONS},
        {
            **OFF_POLICY_PROBE,
            **IQN_FRACTIONS,
            "replay": "prioritized",
            "learning_rate": 3e-3,
            "target_update": "polyak",
            "tau": 0.05,
            "exploration_fraction": 0.3,
            "q": {"hidden": [16, 16]},
        },
        3_000,
        False,
    ),
    "cqn": Setting(
        "gymnax/Pendulum-v1",
        {**OFF_POLICY_SMALL, "q": {"hidden": [16]}, "feature_dim": 8, "reset": ["q"], "replay": "prioritized"},
        {
            **OFF_POLICY_PROBE,
            "replay": "prioritized",
            "learning_rate": 3e-3,
            "feature_dim": 8,
            "q": {"hidden": [16], "v_min": -2.0, "v_max": 2.0},
        },
        3_000,
        True,
    ),
    "dqn": Setting(
        "gymnax/CartPole-v1",
        {**OFF_POLICY_SMALL, "q": {"hidden": [16]}, "reset": ["q"]},
        {
            **OFF_POLICY_PROBE,
            "learning_rate": 3e-3,
            "target_update": "polyak",
            "tau": 0.05,
            "exploration_fraction": 0.3,
            "q": {"hidden": [16]},
        },
        3_000,
        False,
    ),
}

SETTINGS["simbav2"] = SETTINGS["sac"]  # SAC's settings, on SimbaV2's networks and updates
SETTINGS["mdpo_offpolicy"] = dataclasses.replace(  # SAC's, with pi_k refreshed often enough for the short probes
    SETTINGS["sac"],
    agent={**SETTINGS["sac"].agent, "old_policy_every": 16},
    probe_agent={**SETTINGS["sac"].probe_agent, "old_policy_every": 50, "step_size": 100.0},
)
SETTINGS["mdpo"] = dataclasses.replace(  # PPO's settings with the mirror-descent step, probed on a box action
    SETTINGS["ppo"],
    env="gymnax/Pendulum-v1",
    probe_agent={**SETTINGS["ppo"].probe_agent, "step_size_schedule": "constant"},
    probe_box=True,
)


def test_every_registered_algorithm_has_settings():
    missing = sorted(set(ALGORITHMS) - set(SETTINGS))
    assert not missing, f"registered without conformance settings (add them to SETTINGS): {missing}"


def test_registering_a_module_without_the_contract_fails_naming_what_is_missing():
    import types

    from rlx.algos import register

    module = types.ModuleType("half_done")
    module.Config, module.init = object, lambda *a: None
    with pytest.raises(TypeError, match="lacks DESCRIPTION, ACTION_SPACES, State, train_step, act, value"):
        register("half_done", module)
    assert "half_done" not in ALGORITHMS


PLUGIN = (
    "from rlx.algos.td3 import ACTION_SPACES, DESCRIPTION, Config, State, act, init, steps_per_iteration, "
    "train_step, value\n"
)


def test_algorithms_outside_rlx_load_from_entry_points_and_rlx_algos_in_every_process(tmp_path, monkeypatch):
    """An installed package's ``rlx.algos`` entry point and ``RLX_ALGOS=name=module`` register an algorithm in any
    process that asks for it by name (a run of a plugin's algorithm must be readable by ``rlx eval`` and
    ``inference.load``, which start without the user's ``register`` call); ``rlx algos`` lists them; a malformed
    entry, a built-in name, a module that fails to import or lacks the contract are one-line errors."""
    modules, site = tmp_path / "modules", tmp_path / "site"  # the package's metadata only for the subprocess
    modules.mkdir()
    (modules / "my_td3.py").write_text(PLUGIN)
    (modules / "broken_algo.py").write_text("raise RuntimeError('oops')\n")
    dist = site / "fakeplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rlx.algos]\nmy_td3_ep = my_td3\n")
    program = (
        "import sys\n"
        "from rlx import cli, driver\n"
        "config = driver.build_config({'algo': 'my_td3_env', 'env': {'name': 'gymnax/Pendulum-v1'}})\n"
        "print('built', config.algo, type(config.agent).__module__)\n"
        "sys.exit(cli.main(['algos']))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(modules), str(site), *sys.path]),
        "RLX_ALGOS": "my_td3_env=my_td3",
    }
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "built my_td3_env rlx.algos.td3" in done.stdout
    assert re.search(r"^my_td3_ep\s+\[box\]", done.stdout, re.M) and re.search(
        r"^my_td3_env\s+\[box\]", done.stdout, re.M
    )

    from rlx import algos

    monkeypatch.syspath_prepend(str(modules))
    for value, message in [
        ("my_td3", "RLX_ALGOS: entries are name=module, separated by commas; got 'my_td3'"),
        ("sac=my_td3", "algorithm plugin 'sac' (my_td3): sac is a built-in algorithm; choose another name"),
        ("x=broken_algo", "algorithm plugin 'x': importing broken_algo failed: RuntimeError: oops"),
        ("y=json", "algorithm plugin 'y': algorithm 'y' (json) lacks DESCRIPTION, ACTION_SPACES, Config, State"),
    ]:
        monkeypatch.setenv("RLX_ALGOS", value)
        with pytest.raises(ConfigError) as info:
            algos.get("not_there")
        assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)
    assert set(ALGORITHMS) == set(algos._BUILT_IN)


def test_rlx_algos_lists_every_registered_algorithm(capsys):
    from rlx import cli

    assert cli.main(["algos"]) == 0
    out = capsys.readouterr().out
    for name, module in ALGORITHMS.items():
        line = rf"^{name}\s+\[{re.escape(', '.join(module.ACTION_SPACES))}\]\s+{re.escape(module.DESCRIPTION)}$"
        assert re.search(line, out, re.M), (name, out)
    assert "ppo_cartpole" in out and "c51_cartpole" in out


_EXPERIMENTS: dict[str, driver.Experiment] = {}
# The tests that share an algorithm's compiled experiment run in one xdist worker (``--dist loadgroup`` in
# pyproject.toml), so each algorithm's chunk compiles once per test run, not once per worker.
SHARED_EXPERIMENT = [
    pytest.param(algo, marks=pytest.mark.xdist_group(f"experiment-{algo}")) for algo in sorted(ALGORITHMS)
]


def experiment(algo: str) -> driver.Experiment:
    """A small 2-chunk experiment per algorithm, shared by the tests of this module (one compile each)."""
    if algo not in _EXPERIMENTS:
        setting = SETTINGS[algo]
        probe = driver.build_config({"algo": algo, "env": {"name": setting.env}, "agent": setting.agent})
        per_iteration = driver.Experiment(probe).plan.env_steps_per_iteration
        config = driver.build_config(
            {
                "algo": algo,
                "env": {"name": setting.env},
                "agent": setting.agent,
                "total_env_steps": 4 * max(per_iteration, 32),
                "num_chunks": 2,
                "eval_episodes": 2,
            }
        )
        _EXPERIMENTS[algo] = driver.Experiment(config)
    return _EXPERIMENTS[algo]


def run_chunks(exp: driver.Experiment, state, chunks):
    for chunk in chunks:
        state, metrics = exp.run_chunk(state, chunk)
    return state, metrics


@pytest.mark.parametrize("algo", SHARED_EXPERIMENT)
def test_train_step_jits_and_keeps_the_state_shapes(algo):
    exp = experiment(algo)
    state = exp.init()
    after = jax.eval_shape(lambda s: exp.algo.train_step(exp.static_agent, exp.env, s)[0], state)
    assert jax.tree.structure(after) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(state), strict=True):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)
    state, metrics = run_chunks(exp, state, range(exp.plan.num_chunks))
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert int(state.iteration) == exp.plan.num_iterations


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_act_respects_the_action_space(algo):
    module = ALGORITHMS[algo]
    for env_name in [{"discrete": "gymnax/CartPole-v1", "box": "gymnax/Pendulum-v1"}[k] for k in module.ACTION_SPACES]:
        env = make(env_name)
        config = driver.build_config({"algo": algo, "env": {"name": env_name}, "agent": SETTINGS[algo].agent}).agent
        state = module.init(config, env, jax.random.PRNGKey(0), 10)
        obs = 10.0 * jax.random.normal(jax.random.PRNGKey(1), (64, *env.observation_shape))
        for deterministic in (True, False):
            action = jax.jit(lambda s, o, k, d=deterministic, c=config, e=env: module.act(c, e, s, o, k, d))(
                state, obs, jax.random.PRNGKey(2)
            )
            space = env.action_space
            if space.kind == "discrete":
                assert action.shape == (64,) and jnp.issubdtype(action.dtype, jnp.integer)
                assert bool(jnp.all((action >= 0) & (action < space.n)))
            else:
                assert action.shape == (64, *space.shape) and action.dtype == jnp.float32
                assert bool(jnp.all(jnp.abs(action) <= 1.0))
        assert jax.jit(lambda s, o, c=config, e=env: module.value(c, e, s, o))(state, obs).shape == (64,)


@pytest.mark.parametrize("algo", SHARED_EXPERIMENT)
def test_vmapped_seeds_and_hyperparameters_equal_single_runs(algo):
    exp = experiment(algo)
    name = next(f for f in traced_fields(type(exp.config.agent)) if "learning_rate" in f)
    base = getattr(exp.config.agent, name)
    runs = [(0, base), (1, 2 * base)]
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), 0) for seed, _ in runs])
    traced = {
        f: jnp.full((2,), getattr(exp.config.agent, f), jnp.float32)
        for f in traced_fields(type(exp.config.agent))
        if getattr(exp.config.agent, f) is not None
    }
    traced[name] = jnp.array([lr for _, lr in runs], jnp.float32)
    states = jax.jit(jax.vmap(exp.init_fn))(keys, traced)
    chunk = jax.jit(jax.vmap(exp.chunk_fn, in_axes=(0, None)))
    for c in range(exp.plan.num_chunks):
        states, _ = chunk(states, jnp.int32(exp.plan.iterations_done(c + 1) - exp.plan.iterations_done(c)))
    init = jax.jit(exp.init_fn)
    for i in range(len(runs)):  # single runs with the same compiled chunk: traced values only differ
        single, _ = run_chunks(exp, init(keys[i], {f: v[i] for f, v in traced.items()}), range(exp.plan.num_chunks))
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(states.params), strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", SHARED_EXPERIMENT)
def test_checkpoint_round_trip_and_resume_are_bitwise(algo, tmp_path):
    exp = experiment(algo)
    state = exp.init()
    first, _ = exp.run_chunk(state, 0)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(state))  # donated: updated in place, never copied
    assert_resumes_bitwise(exp, first, tmp_path)


@pytest.mark.parametrize("algo", SHARED_EXPERIMENT)
def test_exported_policy_acts_and_evaluates_as_the_train_state(algo, tmp_path):
    """``rlx.inference`` finds what acting reads by tracing ``act``; the saved file acts (mode and sample) and
    evaluates bitwise as the train state, and leaves out the optimizer state and any replay buffer."""
    exp = experiment(algo)
    state, _ = exp.run_chunk(exp.init(), 0)
    policy = inference.load(inference.from_state(exp, state).save(str(tmp_path / "policy.npz")))
    assert policy.paths and not any("opt" in p or "buffer" in p for p in policy.paths), policy.paths
    obs = jax.vmap(exp.env.reset)(jax.random.split(jax.random.PRNGKey(1), 3)).obs
    key = jax.random.PRNGKey(2)
    act = jax.jit(lambda s, o, k, d: exp.algo.act(exp.static_agent, exp.env, s, o, k, d), static_argnames="d")
    np.testing.assert_array_equal(policy(obs, key, deterministic=True), act(state, obs, key, d=True))
    np.testing.assert_array_equal(policy(obs, key), act(state, obs, key, d=False))
    assert policy.evaluate(seed=5) == exp.evaluate(state, 5)
    with np.load(tmp_path / "policy.npz") as f:  # the file acts with JAX alone (for any batch size), bitwise
        program = jax.export.deserialize(f[inference.PROGRAM_KEY].tobytes())
        leaves = {k: f[k] for k in f.files if k.startswith("leaf_")}
    np.testing.assert_array_equal(program.call(leaves, obs), policy(obs))
    np.testing.assert_array_equal(program.call(leaves, obs[:1]), policy(obs[:1]))


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_probe_envs_reach_their_analytic_values(algo):
    """One program vmapped over the five probes (the probe index is traced)."""
    module, setting = ALGORITHMS[algo], SETTINGS[algo]
    example = ProbeEnv("constant", setting.probe_box)
    config = driver.build_config({"algo": algo, "env": {"name": example.name}, "agent": setting.probe_agent}).agent
    iterations = setting.probe_steps // module.steps_per_iteration(config)
    obs = jnp.array([[0.0], [1.0], [-1.0]])

    def train(index, key):
        env = ProbeEnv(index, setting.probe_box)
        state = module.init(config, env, key, iterations)
        state, _ = jax.lax.scan(
            lambda s, _: (module.train_step(config, env, s)[0], None), state, None, length=iterations
        )
        return module.value(config, env, state, obs), module.act(config, env, state, obs, key, True)

    values, actions = jax.jit(jax.vmap(train))(
        jnp.arange(len(PROBES)), jax.random.split(jax.random.PRNGKey(0), len(PROBES))
    )
    v = dict(zip(PROBES, np.asarray(values)))  # columns: obs 0, +1, -1
    a = dict(zip(PROBES, np.asarray(actions).reshape(len(PROBES), 3)))
    tol = setting.tolerance
    assert abs(v["constant"][0] - 1.0) < tol, v
    assert abs(v["observation"][1] - 1.0) < tol and abs(v["observation"][2] + 1.0) < tol, v
    assert abs(v["discount"][0] - GAMMA) < tol and abs(v["discount"][1] - 1.0) < tol, v
    if setting.probe_box:  # reward -(a - target)^2: optimal value 0
        assert abs(a["action"][0] - 0.5) < 1.5 * tol and abs(v["action"][0]) < tol, (a, v)
        assert abs(a["obs_action"][1] - 0.5) < 1.5 * tol and abs(a["obs_action"][2] + 0.5) < 1.5 * tol, a
        assert abs(v["obs_action"][1]) < tol and abs(v["obs_action"][2]) < tol, v
    else:  # reward 1 for the right action
        assert a["action"][0] == 1 and abs(v["action"][0] - 1.0) < tol, (a, v)
        assert a["obs_action"][1] == 1 and a["obs_action"][2] == 0, a
        assert abs(v["obs_action"][1] - 1.0) < tol and abs(v["obs_action"][2] - 1.0) < tol, v
