"""Exported policies (``rlx.inference``, ``rlx export``): what acting reads is found by tracing, a saved file
holds only that and acts and evaluates as the train state did, bad files and observations fail in one line.
Every algorithm's policy is checked in ``tests/test_conformance.py``."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import subprocess_env

from rlx import cli, driver, evaluate, inference
from rlx.config import ConfigError


def test_input_dependence_follows_nested_jits_and_keeps_what_other_programs_read():
    @jax.jit
    def inner(a, unused):
        return a * 2.0

    def f(a, b, c, d, e):
        branch = jax.lax.cond(c > 0, lambda x: x + 1.0, lambda x: x - 1.0, d)
        shape_only = jnp.zeros(e.shape)
        return inner(a, b) + branch + shape_only

    x = jnp.ones(3)
    jaxpr = jax.make_jaxpr(f)(x, x, 1.0, x, x).jaxpr
    assert inference._input_dependence(jaxpr) == [True, False, True, True, False]
    assert inference.dce_jaxpr(jaxpr, [True])[1] == [True, False, True, True, False]  # JAX's, used where importable


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    """A short SAC run on Pendulum (small networks, gradient steps in both chunks), its directory and policy."""
    run_dir = str(tmp_path_factory.mktemp("inference") / "run")
    argv = ["train", "sac", "--env", "gymnax/Pendulum-v1", "--steps", "512", "--out", run_dir, "--quiet"]
    sets = ["agent.learning_starts=128", "agent.actor.hidden=[16]", "agent.critic.hidden=[16]", "num_chunks=2"]
    sets += ["agent.normalize_observations=true", "eval_episodes=3"]
    assert cli.main(argv + [arg for s in sets for arg in ("--set", s)]) == 0
    return run_dir


def test_exported_policy_keeps_only_the_actor_and_statistics_and_acts_as_the_run(sac_run, tmp_path, capsys):
    experiment, state, _ = evaluate.load(sac_run)
    policy = inference.from_run(sac_run)
    assert policy.source["chunks_done"] == 2 and policy.source["env_steps"] == 512
    assert all(p.startswith((".params.actor", ".loop.obs_stats")) for p in policy.paths), policy.paths
    assert any(p.startswith(".loop.obs_stats") for p in policy.paths)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    assert policy.nbytes < state_bytes / 20  # no replay buffer, critics, targets or optimizer states

    out = str(tmp_path / "policy.npz")
    assert cli.main(["export", sac_run, out]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = inference.load(out)
    assert loaded.paths == policy.paths and loaded.source == policy.source
    for a, b in zip(loaded.leaves, policy.leaves):
        np.testing.assert_array_equal(a, b)

    obs = jax.vmap(experiment.env.reset)(jax.random.split(jax.random.PRNGKey(1), 5)).obs * 3.0
    key = jax.random.PRNGKey(7)
    act = jax.jit(
        lambda s, o, k, deterministic: experiment.algo.act(
            experiment.static_agent, experiment.env, s, o, k, deterministic
        ),
        static_argnames="deterministic",
    )
    for p in (policy, loaded):
        np.testing.assert_array_equal(p(obs), act(state, obs, key, deterministic=True))
        np.testing.assert_array_equal(p(obs, key), act(state, obs, key, deterministic=False))
        assert p(obs[0]).shape == (1,)  # one observation in, one action out
        np.testing.assert_allclose(p(np.asarray(obs[0], np.float64)), p(obs)[0], rtol=1e-6)
    assert not np.array_equal(policy(obs, key), policy(obs))  # a key samples

    # evaluation: the file's numbers are the run's, from the CLI and the API
    assert loaded.evaluate(seed=4) == experiment.evaluate(state, 4)
    assert cli.main(["eval", sac_run, "--seed", "4"]) == 0
    from_run = capsys.readouterr().out.split(": eval/")[1]
    assert cli.main(["eval", out, "--seed", "4", "--render", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    assert printed.split(": eval/")[1].splitlines()[0] == from_run.splitlines()[0]
    assert "exported from" in printed and os.path.getsize(tmp_path / "r.html") > 1000
    assert loaded.evaluate(seed=4, episodes=2)["eval/episode_length"] == 200.0
    with pytest.raises(ConfigError, match="^episodes: must be > 0; got 0$"):  # named the CLI's --episodes
        loaded.evaluate(episodes=0)


def test_policy_files_and_observations_fail_in_one_line(sac_run, tmp_path, capsys):
    policy = inference.from_run(sac_run)
    out = str(tmp_path / "policy.npz")
    policy.save(out)
    before = open(out, "rb").read()
    with pytest.raises(ConfigError, match="already exists"):
        policy.save(out)
    assert cli.main(["export", sac_run, out]) == cli.EXIT_CONFIG_ERROR
    assert open(out, "rb").read() == before  # never replaced without --overwrite
    assert cli.main(["export", sac_run, out, "--overwrite"]) == 0
    with pytest.raises(ConfigError, match="must name the .npz file"):
        policy.save(str(tmp_path / "policy.yaml"))
    assert cli.main(["export", str(tmp_path / "nowhere"), out]) == cli.EXIT_CONFIG_ERROR
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "empty"), out]) == cli.EXIT_CONFIG_ERROR  # it said "eval ..."
    assert f"config error: export {tmp_path / 'empty'}: no config.yaml there" in capsys.readouterr().err
    assert cli.main(["eval", os.path.join(sac_run, "config.yaml")]) == cli.EXIT_CONFIG_ERROR
    assert "not an rlx policy file" in capsys.readouterr().err
    assert [p for p in os.listdir(tmp_path) if p.startswith(".rlx-policy-")] == []  # no temporary left behind

    with np.load(out) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["__rlx_policy__"]))
    meta["config"]["agent"]["actor"]["hidden"] = [32]  # a config whose actor does not fit the arrays
    np.savez(tmp_path / "other.npz", **{**arrays, "__rlx_policy__": np.array(json.dumps(meta))})
    with pytest.raises(
        ConfigError,
        match=r"leaf \.params\.actor\[.Dense_0.\]\[.bias.\] is \[16\] float32, the config.s train state has \[32\]",
    ):
        inference.load(str(tmp_path / "other.npz"))
    meta["config"]["agent"]["actor"]["hidden"] = [16]
    meta["leaves"] = meta["leaves"][:-1]
    np.savez(tmp_path / "short.npz", **{**arrays, "__rlx_policy__": np.array(json.dumps(meta))})
    with pytest.raises(ConfigError, match="acting reads leaves the file lacks"):
        inference.load(str(tmp_path / "short.npz"))

    with pytest.raises(ValueError, match=r"obs: expected \[B, 3\] or \[3\] \(gymnax/Pendulum-v1\); got \[4, 2\]"):
        policy(jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="obs: expected"):
        policy({"state": jnp.zeros(3)})
    np.testing.assert_array_equal(policy([0.1, -0.2, 0.3]), policy(np.array([0.1, -0.2, 0.3])))  # a list is one obs
    np.testing.assert_allclose(jax.jit(policy)(jnp.ones(3)), policy(jnp.ones(3)), rtol=1e-5)  # hashable: jittable
    with open(out, "rb") as f:
        (tmp_path / "cut.npz").write_bytes(f.read()[:2000])  # an interrupted copy
    with pytest.raises(ConfigError, match="not an rlx policy file"):
        inference.load(str(tmp_path / "cut.npz"))
    assert cli.main(["eval", str(tmp_path / "nosuch.npz")]) == cli.EXIT_CONFIG_ERROR
    assert "no such policy file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="seed: must be"):
        policy.evaluate(seed=-1)


STANDALONE = """
import sys
sys.modules["rlx"] = None  # not importable: the file must act with JAX and NumPy alone
import jax, numpy as np
with np.load(sys.argv[1]) as f:
    program = jax.export.deserialize(f["__rlx_program__"].tobytes())
    leaves = {k: f[k] for k in f.files if k.startswith("leaf_")}
np.save(sys.argv[3], program.call(leaves, np.load(sys.argv[2])))
"""


def test_a_saved_policy_acts_with_jax_alone(sac_run, tmp_path):
    policy = inference.from_run(sac_run)
    path = policy.save(str(tmp_path / "policy.npz"))
    obs = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    args = [sys.executable, "-c", STANDALONE, path, str(tmp_path / "obs.npy"), str(tmp_path / "actions.npy")]
    subprocess.run(args, check=True, capture_output=True, env=subprocess_env(tmp_path / "cache"))
    np.testing.assert_array_equal(np.load(tmp_path / "actions.npy"), policy(obs))
    with np.load(path) as f:
        meta = json.loads(str(f[inference.META_KEY]))
    assert meta["program"]["platforms"] == ["cpu", "cuda", "rocm", "tpu"]
    assert meta["program"]["call"] == "program.call(leaves, obs) -> actions"


def test_sampling_needs_a_key_and_an_empty_batch_has_no_actions(sac_run):
    policy = inference.from_run(sac_run)
    with pytest.raises(ValueError, match=r"key: a sampled action \(deterministic=False\) needs a PRNG key"):
        policy(jnp.ones(3), deterministic=False)  # silently PRNGKey(0) for every call before
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    assert not np.array_equal(policy(jnp.ones(3), keys[0]), policy(jnp.ones(3), keys[1]))
    empty = policy(np.zeros((0, 3)))  # failed inside the network before
    assert empty.shape == (0, 1) and empty.dtype == policy(jnp.ones((2, 3))).dtype


@pytest.mark.parametrize("critic_cell", ["none", "gru"])
def test_recurrent_policy_with_a_privileged_critic_steps_its_memory(critic_cell):
    """With a recurrent critic too, the policy's memory is the policy's carry alone: it carried the critic's and
    needed its privileged state to step it (a probe)."""
    config = driver.build_config(
        {
            "algo": "ppo",
            "env": {"name": "gymnax/CartPole-v1", "observe": [0, 2], "privileged": True},
            "total_env_steps": 256,
            "num_chunks": 1,
            "agent": {
                "num_envs": 4,
                "unroll_length": 16,
                "num_minibatches": 2,
                "policy": {"hidden": [8], "recurrent": "gru", "obs_key": "state"},
                "value": {"hidden": [8], "obs_key": "privileged_state", "recurrent": critic_cell},
                "normalize_observations": True,
            },
        }
    )
    experiment = driver.Experiment(config)
    state, _ = experiment.run_chunk(experiment.init(), 0)
    policy = inference.from_state(experiment, state)
    assert policy.recurrent and policy.source == {}
    assert [m.shape for m in jax.tree.leaves(policy.initial_memory(3))] == [(3, 8)]  # the policy's GRU alone
    assert not any("value" in p or "privileged_state" in p for p in policy.paths), policy.paths
    with pytest.raises(ValueError, match="recurrent"):
        policy({"state": jnp.zeros((2, 2)), "privileged_state": jnp.zeros((2, 4))})
    assert policy.observation_keys == ("state",)  # the critic's privileged state is not read when acting

    env_steps = jax.vmap(experiment.env.reset)(jax.random.split(jax.random.PRNGKey(3), 2))
    obs, starts = env_steps.obs, jnp.array([True, False])
    memory = jax.tree.map(lambda m: m + 0.5, policy.initial_memory(2))
    actions, after = policy.step(obs, memory, starts)
    step = jax.jit(
        lambda s, o, st, m: experiment.algo.act_step(
            experiment.static_agent, experiment.env, s, o, st, m, jax.random.PRNGKey(0), True
        )
    )
    want_actions, want_memory = step(state, obs, starts, memory)
    np.testing.assert_array_equal(actions, want_actions)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(want_memory)):
        np.testing.assert_array_equal(a, b)
    deployed = policy.step({"state": obs["state"]}, memory, starts)  # no privileged state on a robot
    for a, b in zip(jax.tree.leaves(deployed), jax.tree.leaves((actions, after))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="privileged_state may be left out.*got {privileged_state: "):
        policy.step({"privileged_state": obs["privileged_state"]}, memory, starts)
    empty_actions, same = policy.step({"state": jnp.zeros((0, 2))}, policy.initial_memory(0))
    assert empty_actions.shape == (0,) and jax.tree.structure(same) == jax.tree.structure(memory)
    program = policy.program()  # what a saved file holds: acts on the state entry alone, bitwise
    leaves = {f"leaf_{i}": x for i, x in enumerate(policy.leaves)}
    program_actions, program_memory = program.call(leaves, {"state": obs["state"]}, jax.tree.leaves(memory), starts)
    np.testing.assert_array_equal(program_actions, actions)
    for a, b in zip(program_memory, jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="memory: expected policy.initial_memory"):
        policy.step(obs, None)  # silently memoryless before
    with pytest.raises(ValueError, match="memory: for"):
        policy.step(obs, policy.initial_memory(3))
    with pytest.raises(ValueError, match=r"starts: expected shape \(2,\)"):
        policy.step(obs, memory, jnp.zeros(3, bool))
    assert policy.evaluate(seed=1) == experiment.evaluate(state, 1)
