"""Env layer: adapters, registry errors, wrappers (auto-reset, time limit, statistics, repeat)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx import envs
from rlx.envs import AutoReset, Discrete, EnvError, EpisodeStats, TimeLimit, Vmap, training_env
from rlx.envs.base import EnvStep, first_step
from rlx.ops.returns import gae


class CounterEnv:
    """obs = [t]; reward 1 per step; action 1 terminates the episode, action 0 continues."""

    name = "test/counter"
    observation_shape = (1,)
    action_space = Discrete(2)
    max_episode_steps = 10**6

    def reset(self, key):
        return first_step(jnp.zeros((), jnp.int32), jnp.zeros((1,), jnp.float32))

    def step(self, env_step, action):
        t = env_step.state + 1
        return EnvStep(
            state=t,
            obs=jnp.full((1,), t, jnp.float32),
            reward=jnp.ones((), jnp.float32),
            terminated=action == 1,
            truncated=jnp.zeros((), bool),
            info={},
        )


def rollout(env, actions):
    env_step = env.reset(jax.random.PRNGKey(0))
    outs = []
    for a in actions:
        env_step = env.step(env_step, jnp.asarray(a))
        outs.append(env_step)
    return outs


def test_time_limit_truncates_and_auto_reset_keeps_final_obs():
    env = AutoReset(EpisodeStats(TimeLimit(CounterEnv(), 3)))
    # episode 1: three steps -> truncated at t=3; episode 2: terminated by action 1 at t=2
    outs = rollout(env, [0, 0, 0, 0, 1, 0])
    trunc = [bool(o.truncated) for o in outs]
    term = [bool(o.terminated) for o in outs]
    assert trunc == [False, False, True, False, False, False]
    assert term == [False, False, False, False, True, False]
    assert float(outs[2].info["final_obs"][0]) == 3.0  # true last observation kept
    assert float(outs[2].obs[0]) == 0.0  # obs is already the new episode's first
    assert float(outs[4].info["final_obs"][0]) == 2.0
    assert float(outs[1].info["final_obs"][0]) == float(outs[1].obs[0]) == 2.0
    assert float(outs[2].info["episode_return"]) == 3.0 and int(outs[2].info["episode_length"]) == 3
    assert float(outs[4].info["episode_return"]) == 2.0
    assert float(outs[5].info["episode_return"]) == 1.0  # statistics restart after the end


def test_targets_bootstrap_on_truncation_not_on_termination():
    """One-step TD targets (lambda=0) through the real wrapper stack with V(s) = 10 * obs."""
    env = AutoReset(TimeLimit(CounterEnv(), 3))
    outs = rollout(env, [0, 0, 0, 0, 1])

    def stack(f):
        return jnp.stack([f(o) for o in outs])

    next_values = 10.0 * stack(lambda o: o.info["final_obs"][0])
    values = jnp.zeros(len(outs))
    _, targets = gae(
        stack(lambda o: o.reward),
        values,
        next_values,
        stack(lambda o: o.terminated),
        stack(lambda o: o.truncated),
        0.5,
        0.0,
    )
    # step 2 is truncated: target = 1 + 0.5 * V(final obs = 3) = 16, not 1 + 0.5 * V(reset obs = 0)
    # step 4 is terminated: target = 1, no bootstrap
    np.testing.assert_allclose(targets, [1 + 5.0, 1 + 10.0, 1 + 15.0, 1 + 5.0, 1.0])


def test_vmap_and_training_env_shapes():
    env = training_env(CounterEnv(), 4)
    s = env.reset(jax.random.PRNGKey(0))
    s = env.step(s, jnp.array([0, 1, 0, 1]))
    assert s.obs.shape == (4, 1) and s.reward.shape == (4,)
    np.testing.assert_array_equal(s.terminated, [False, True, False, True])
    np.testing.assert_array_equal(s.obs[:, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(s.info["final_obs"][:, 0], [1, 1, 1, 1])


@pytest.mark.parametrize("spec", ["gymnax/CartPole-v1", "brax/inverted_pendulum?backend=positional"])
def test_training_env_resets_only_when_needed_and_equals_vmapped_auto_reset(spec):
    """VmapAutoReset skips the reset on steps where no episode ended; results are bitwise those of
    Vmap(AutoReset(...)), which resets every env at every step."""
    base = envs.make(spec)
    fast, reference = training_env(base, 8), Vmap(AutoReset(EpisodeStats(base)), 8)

    def rollout_of(env, key):
        def body(s, k):
            action = (
                jax.random.randint(k, (8,), 0, 2)
                if spec.startswith("gymnax")
                else jax.random.uniform(k, (8, 1), minval=-1.0, maxval=1.0)
            )
            s = env.step(s, action)
            return s, (s.obs, s.reward, s.done, s.info["final_obs"])

        return jax.lax.scan(body, env.reset(key), jax.random.split(key, 64))

    a = jax.jit(rollout_of, static_argnums=0)(fast, jax.random.PRNGKey(3))
    b = jax.jit(rollout_of, static_argnums=0)(reference, jax.random.PRNGKey(3))
    assert int(a[1][2].sum()) > 0  # episodes did end (and restart) during the rollout
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_action_repeat_sums_rewards_and_stops_at_episode_end():
    env = envs.ActionRepeat(TimeLimit(CounterEnv(), 5), 2)
    assert env.max_episode_steps == 3
    outs = rollout(env, [0, 0, 0])
    np.testing.assert_allclose([float(o.reward) for o in outs], [2.0, 2.0, 1.0])  # 5 steps, cut mid-repeat
    assert bool(outs[2].truncated) and float(outs[2].obs[0]) == 5.0


def test_action_repeat_under_the_training_wrappers():
    """Under EpisodeStats and AutoReset (whose info keys the wrapped env does not return), as in training:
    episodes of 5 env steps in 3 agent steps, restarting, and a terminating action ends the repeat early."""
    env = AutoReset(EpisodeStats(envs.ActionRepeat(TimeLimit(CounterEnv(), 5), 2)))
    outs = rollout(env, [0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose([float(o.reward) for o in outs], [2.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    assert [bool(o.done) for o in outs] == [False, False, True, False, True, False]
    assert float(outs[2].info["final_obs"][0]) == 5.0 and float(outs[2].info["episode_return"]) == 5.0
    assert float(outs[4].info["final_obs"][0]) == 3.0 and int(outs[4].info["episode_length"]) == 2
    vec = training_env(envs.make("gymnax/CartPole-v1?action_repeat=3"), 4)
    step = jax.jit(vec.step)
    s = step(vec.reset(jax.random.PRNGKey(0)), jnp.zeros(4, jnp.int32))
    np.testing.assert_array_equal(s.reward, 3.0)  # CartPole pays 1 per env step: 3 per agent step
    assert not s.done.any()


def test_gymnax_cartpole_adapter():
    env = envs.make("gymnax/CartPole-v1")
    assert env.observation_shape == (4,) and env.action_space == Discrete(2) and env.max_episode_steps == 500
    vec = training_env(env, 8)
    step = jax.jit(vec.step)
    s = vec.reset(jax.random.PRNGKey(0))
    terminated = 0
    for _ in range(60):
        s = step(s, jnp.zeros(8, jnp.int32))  # always push left: every episode terminates
        terminated += int(s.terminated.sum())
        assert not s.truncated.any()
    assert terminated >= 8


def test_batched_envs_refuse_actions_of_the_wrong_shape_in_one_line():
    """gymnax Pendulum kept the first of two actions per env; a wrong batch failed deep inside vmap."""
    pendulum, cartpole = envs.make("gymnax/Pendulum-v1"), envs.make("gymnax/CartPole-v1")
    for make_batch in (Vmap, training_env):
        batch = make_batch(pendulum, 3)
        first = batch.reset(jax.random.PRNGKey(0))
        batch.step(first, jnp.zeros((3, 1)))
        for shape in ((3, 2), (2, 1), (3,)):
            with pytest.raises(
                ValueError,
                match=rf"action: expected shape \[3, 1\] \(3 envs of gymnax/Pendulum-v1, Box\[1\]\); got \[{', '.join(map(str, shape))}\]",
            ):
                batch.step(first, jnp.zeros(shape))
    batch = Vmap(cartpole, 2)
    with pytest.raises(
        ValueError, match=r"expected shape \[2\] \(2 envs of gymnax/CartPole-v1, Discrete\(2\)\); got \[2, 1\]"
    ):
        batch.step(batch.reset(jax.random.PRNGKey(0)), jnp.zeros((2, 1), jnp.int32))


def test_gymnax_episode_length_override_truncates():
    env = training_env(envs.make("gymnax/Pendulum-v1?episode_length=7"), 2)
    assert env.max_episode_steps == 7 and env.action_space.kind == "box"
    assert env.action_space.low == (-2.0,) and env.action_space.high == (2.0,)
    s = env.reset(jax.random.PRNGKey(0))
    for _ in range(7):
        s = env.step(s, jnp.ones((2, 1)))
    assert s.truncated.all() and not s.terminated.any()


def test_brax_inverted_pendulum_terminates_and_truncates():
    env = envs.make("brax/inverted_pendulum?backend=positional&episode_length=5")
    assert env.observation_shape == (4,) and env.action_space.shape == (1,)
    vec = Vmap(env, 2)
    s = vec.reset(jax.random.PRNGKey(0))
    step = jax.jit(vec.step)
    for _ in range(5):
        s = step(s, jnp.zeros((2, 1)))
    assert s.truncated.all() and not s.terminated.any()


def test_making_a_brax_env_runs_nothing(monkeypatch):
    """brax's ``observation_size`` runs ``reset`` op by op (ant on mjx: ~35 s of compiling each primitive on CPU,
    before a config could even be checked); the adapter takes the shape from an abstract trace."""
    from brax.envs import base

    def never(self):
        raise AssertionError("brax's observation_size ran reset")

    monkeypatch.setattr(base.PipelineEnv, "observation_size", property(never))
    env = envs.make("brax/hopper?backend=positional")
    assert env.observation_shape == (11,) and env.action_space.shape == (3,)
    assert envs.make("brax/ant?backend=mjx").observation_shape == (27,)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("mujoco/ant", "suite one of brax, gymnax, jumanji, playground"),
        ("brax/antt", "env brax/antt: unknown brax env (did you mean brax/ant?); available: ant,"),
        ("brax/ant?backend=physx", "env brax/ant: backend must be one of generalized, mjx, positional, spring"),
        (
            "gymnax/CartPole-v0",
            "env gymnax/CartPole-v0: unknown gymnax env (did you mean gymnax/CartPole-v1?); available: CartPole-v1",
        ),
        ("gymnax/CartPole-v1?backend=mjx", "gymnax envs have no backend option"),
        # int32 step counters: 3e9 passed the checks and failed once training had started
        ("gymnax/CartPole-v1?episode_length=3000000000", "episode_length: must be > 0 and < 2147483648"),
        ("brax/hopper?action_repeat=2147483648", "action_repeat: must be > 0 and < 2147483648"),
        (
            "gymnax/Breakout-MinAtar?observe=[0]",
            "env.observe: needs a flat observation; gymnax/Breakout-MinAtar's is (10, 10, 4)",
        ),
        ("gymnax/CartPole-v1?observe=[0,0]", "env.observe: each index once"),
        (
            "gymnax/CartPole-v1?observe=[4]",
            "env.observe: indices into the (4,) observation of gymnax/CartPole-v1 (each in 0..3)",
        ),
    ],
)
def test_registry_errors_are_one_line(spec, message):
    from rlx.config import ConfigError

    with pytest.raises(ConfigError) as info:
        envs.make(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_make_validates_an_env_config_built_in_python_and_takes_a_mapping():
    from rlx.config import ConfigError

    # an EnvConfig built or replaced in Python skipped validation: episode_length -5 made an env that never ended
    with pytest.raises(ConfigError, match="env.episode_length: must be > 0"):
        envs.make(envs.EnvConfig(episode_length=-5))
    with pytest.raises(ConfigError, match="env.foo: unknown field"):
        envs.make(envs.EnvConfig(), foo=1)
    with pytest.raises(
        ConfigError, match="env: expected 'suite/name', a mapping of env fields or an EnvConfig; got 123"
    ):
        envs.make(123)
    assert envs.make({"name": "gymnax/CartPole-v1"}, episode_length=9).max_episode_steps == 9


def test_a_plus_in_an_env_option_is_a_plus():
    """``parse_qsl`` reads '+' as a space: ``mass: [0.5, 1.0e+1]`` became ``[0.5, '1.0e 1']``."""
    assert envs.parse_env_spec("brax/hopper?randomize={mass: [0.5, 1.0e+1]}")["randomize"] == {"mass": [0.5, 10.0]}


playground = pytest.importorskip("mujoco_playground", reason="playground extra not installed")


def test_playground_dm_control_env_steps():
    env = envs.make("playground/CartpoleBalance?episode_length=4")
    assert env.observation_shape == (5,) and env.action_space.shape == (1,)
    vec = Vmap(env, 2)
    s = jax.jit(vec.reset)(jax.random.PRNGKey(0))
    step = jax.jit(vec.step)
    for _ in range(4):
        s = step(s, jnp.zeros((2, 1)))
    assert s.truncated.all() and s.reward.shape == (2,)
    with pytest.raises(EnvError, match="unknown Playground env"):
        envs.make("playground/NoSuchEnv")


def _playground_impl(env) -> str:
    while hasattr(env, "_env") or hasattr(env, "env"):
        env = getattr(env, "_env", None) or env.env
    return env._config.impl


def test_playground_uses_mjx_jax_where_warp_is_missing(monkeypatch):
    # On a GPU Playground's default implementation is Warp; without warp-lang installed that fails to load.
    from rlx.envs import adapters

    monkeypatch.setattr(adapters.jax, "default_backend", lambda: "gpu")
    real_find_spec = adapters.importlib.util.find_spec
    monkeypatch.setattr(adapters.importlib.util, "find_spec", lambda n: None if n == "warp" else real_find_spec(n))
    assert _playground_impl(envs.make("playground/CartpoleBalance?episode_length=4")) == "jax"
    assert _playground_impl(envs.make("playground/CartpoleBalance?episode_length=4&backend=jax")) == "jax"


def test_playground_warp_on_cpu_is_refused_before_training():
    # its state did not batch in the auto-reset: a traceback 9-35 s into training
    with pytest.raises(EnvError, match="backend warp fails on CPU .*; use jax, the default on CPU"):
        envs.make("playground/CartpoleBalance?backend=warp")
