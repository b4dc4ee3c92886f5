"""Domain randomization of brax physics: the scaled model, per-env dynamics in a batch, redraws at reset,
nominal evaluation, resume, and one-line config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_resumes_bitwise, tree_equal

from rlx import driver
from rlx.config import ConfigError
from rlx.envs import DomainRandomization, Vmap, make, training_env
from rlx.envs.randomization import scaled_model

RANGES = {"mass": [0.5, 2.0], "actuator_gain": [0.5, 1.5], "friction": [0.2, 1.0]}


@pytest.fixture(scope="module")
def pendulum():
    return make("brax/inverted_pendulum", randomize=RANGES)


def test_scaled_model_multiplies_exactly_the_named_parameters(pendulum):
    nominal = pendulum.env.nominal
    factors = {
        "friction": jnp.array([0.5, 2.0, 3.0]),
        "mass": jnp.array([1.0, 2.0, 0.5]),
        "actuator_gain": jnp.array([3.0]),
    }
    model = scaled_model(nominal, factors)
    friction = np.array(nominal.geom_friction)
    friction[:, 0] *= [0.5, 2.0, 3.0]  # sliding friction only; torsional and rolling stay
    np.testing.assert_allclose(model.geom_friction, friction)
    np.testing.assert_allclose(model.body_mass, np.array(nominal.body_mass) * [1.0, 2.0, 0.5])
    np.testing.assert_allclose(model.body_inertia, np.array(nominal.body_inertia) * np.array([1.0, 2.0, 0.5])[:, None])
    np.testing.assert_allclose(model.link.inertia.mass, np.array(nominal.link.inertia.mass) * [2.0, 0.5])
    np.testing.assert_allclose(
        model.link.inertia.i, np.array(nominal.link.inertia.i) * np.array([2.0, 0.5])[:, None, None]
    )
    np.testing.assert_allclose(model.actuator_gainprm, np.array(nominal.actuator_gainprm) * 3.0)
    np.testing.assert_allclose(model.actuator_biasprm, np.array(nominal.actuator_biasprm) * 3.0)
    np.testing.assert_allclose(model.actuator.gain, np.array(nominal.actuator.gain) * 3.0)
    untouched = scaled_model(nominal, {})
    assert tree_equal(untouched.body_mass, nominal.body_mass) and tree_equal(untouched.dof_damping, nominal.dof_damping)


def test_envs_in_a_batch_draw_their_own_factors_and_step_with_them(pendulum):
    envs = Vmap(pendulum, 8)
    first = jax.jit(envs.reset)(jax.random.PRNGKey(0))
    factors = first.state.inner.factors
    for name, (low, high) in RANGES.items():
        values = np.asarray(factors[name])
        assert values.shape[0] == 8 and low <= values.min() and values.max() <= high
        assert len(np.unique(values[:, -1])) == 8  # a different draw per env
    # Env 0's physical state in every slot, each slot keeping its own factors: the next states must differ,
    # and each must equal brax stepping that state on the model its factors define.
    same = jax.tree.map(lambda x: jnp.broadcast_to(x[0], x.shape), first.state.inner.inner)
    start = first.replace(state=first.state.replace(inner=first.state.inner.replace(inner=same)))
    action = jnp.full((8, 1), 0.5)
    nxt = jax.jit(envs.step)(start, action)
    obs = np.asarray(nxt.obs)
    assert np.abs(obs[1:] - obs[0]).max(axis=1).min() > 1e-4, obs
    assert tree_equal(nxt.state.inner.factors, factors)  # kept while the episode goes on
    brax_env = pendulum.env.env._env
    for i in (0, 5):
        brax_env.sys = scaled_model(pendulum.env.nominal, jax.tree.map(lambda x, i=i: x[i], factors))
        try:
            reference = jax.jit(brax_env.step)(jax.tree.map(lambda x: x[0], same), action[0])
        finally:
            brax_env.sys = pendulum.env.nominal
        np.testing.assert_allclose(obs[i], reference.obs, rtol=1e-5, atol=1e-5)


def test_a_finished_episode_redraws_its_factors_and_the_others_keep_theirs(pendulum):
    envs = training_env(pendulum, 4)
    env_step = jax.jit(envs.reset)(jax.random.PRNGKey(1))

    def factors_of(s):
        return np.asarray(s.state.inner.inner.inner.factors["mass"])  # AutoReset > EpisodeStats > TimeLimit

    before = factors_of(env_step)
    step = jax.jit(envs.step)
    for _ in range(200):  # pushing hard one way tips the pendulum over within a few dozen steps
        env_step = step(env_step, jnp.ones((4, 1)))
        if bool(env_step.done.any()):
            break
    done = np.asarray(env_step.done)
    assert done.any()
    after = factors_of(env_step)
    assert (after[done] != before[done]).all() and (after[~done] == before[~done]).all()


def small_run(**randomize):
    return driver.build_config(
        {
            "algo": "ppo",
            "env": {"name": "brax/inverted_pendulum", "randomize": randomize},
            "total_env_steps": 2048,
            "num_chunks": 2,
            "eval_episodes": 2,
            "agent": {"num_envs": 8, "unroll_length": 64, "num_minibatches": 2, "num_epochs": 1},
        }
    )


def test_training_state_carries_the_factors_through_a_checkpoint_and_resumes_bitwise(tmp_path):
    exp = driver.Experiment(small_run(mass=[0.5, 2.0]))
    assert not isinstance(exp.eval_env.unwrapped, DomainRandomization)  # evaluation: the nominal model
    first, _ = exp.run_chunk(exp.init(), 0)
    resumed = assert_resumes_bitwise(exp, first, tmp_path)
    assert np.isfinite(exp.evaluate(resumed, 0)["eval/episode_return"])
    randomized_eval = driver.Experiment(small_run(mass=[0.5, 2.0], evaluate="randomized"))
    assert randomized_eval.eval_env is randomized_eval.env


@pytest.mark.parametrize(
    ("randomize", "message"),
    [
        (
            {"mass": [-1.0, 2.0]},
            "env.randomize.mass: expected [low, high] factors with > 0 low <= high <= 3.403e+38 (float32); got [-1.0, 2.0]",
        ),
        ({"mass": [1e30, 1e40]}, "env.randomize.mass: expected [low, high] factors with > 0 low <= high <= 3.403e+38"),
        ({"evaluate": "randomized"}, "env.randomize.evaluate: 'randomized' needs a range to draw from"),
        ({"friction": [1.5, 0.5]}, "env.randomize.friction: expected [low, high] factors with >= 0 low <= high"),
        ({"actuator_gain": [0.0, 1.0]}, "env.randomize.actuator_gain: expected [low, high] factors with > 0"),
        ({"mass": [0.5, 1.0, 2.0]}, "env.randomize.mass: expected [low, high]"),
        ({"evaluate": "both", "mass": [0.5, 1.0]}, "env.randomize.evaluate: must be one of nominal, randomized"),
        ({"gravity": [0.5, 1.0]}, "env.randomize.gravity: unknown field"),
    ],
)
def test_bad_randomization_gets_one_line_before_anything_compiles(randomize, message):
    with pytest.raises(ConfigError) as info:
        small_run(**randomize)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    with pytest.raises(ConfigError, match="env.randomize: brax and playground envs only"):
        driver.build_config({"algo": "ppo", "env": {"name": "gymnax/CartPole-v1", "randomize": {"mass": [0.5, 1.0]}}})


@pytest.mark.parametrize(
    ("randomize", "message"),
    [
        ({"mass": [1.0, 3e38]}, "mass: a factor of 3e+38 takes this model's body_mass (10.472) past the float32 max"),
        ({"mass": [1e-36, 1.0]}, "mass: a factor of 1e-36 takes this model's body_inertia (0.0059065) below the small"),
        ({"actuator_gain": [1e-40, 1.0]}, "actuator_gain: a factor of 1e-40 takes this model's actuator_gainprm"),
    ],
)
def test_factors_that_take_the_model_out_of_float32_are_refused_when_the_env_is_made(randomize, message):
    """Each bound is a valid float32, but times this model's values it overflows (or flushes to 0): such a run
    diverged after compiling. The env, made before anything compiles, names the field and the parameter."""
    with pytest.raises(ConfigError) as info:
        driver.Experiment(small_run(**randomize))
    assert f"env.randomize.{message}" in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_rlx_eval_names_the_model_it_evaluated_on():
    """``rlx eval`` of a randomized run did not say whether its episodes ran on the nominal model (a probe)."""
    from rlx import cli

    assert cli._evaluated_model(small_run()) == ""
    assert cli._evaluated_model(small_run(mass=[0.5, 2.0])) == " on the nominal model (env.randomize.evaluate: nominal)"
    randomized = small_run(mass=[0.5, 2.0], evaluate="randomized")
    assert cli._evaluated_model(randomized) == " on randomized models (env.randomize.evaluate: randomized)"


def test_a_friction_factor_of_zero_is_allowed():
    """Friction's documented range starts at 0, which gives exact zeros (it was refused as an underflow)."""
    driver.Experiment(small_run(friction=[0.0, 2.0]))


@pytest.mark.parametrize(
    ("name", "friction", "noted"),
    [
        ("playground/CheetahRun", [0.001, 1.0], True),
        ("playground/CheetahRun", [0.02, 1.0], False),
        ("brax/hopper?backend=mjx", [0.0, 1.0], True),
        ("brax/hopper", [0.0, 1.0], False),  # brax's own pipeline floors friction
    ],
)
def test_a_divergence_names_a_friction_range_mjx_may_step_to_nan(name, friction, noted):
    """MJX's JAX pipeline steps CheetahRun to NaN at sliding frictions <= 0.002 (a probe), which the run reported as
    a bare 'training diverged' after compiling; other models stay finite at 0, so the range is named, not refused."""
    env = make(name, randomize={"friction": friction})
    note = env.divergence_note
    assert (note != "") == noted, note
    if noted:
        assert note.startswith(f"env.randomize.friction's low factor {friction[0]:g} takes this model's largest")
        assert "try a low >= " in note and "\n" not in note


def test_playground_envs_step_on_their_randomized_mjx_models_and_resume(tmp_path):
    """Playground keeps its model in ``_mjx_model``; its state has zero-size arrays the checkpoint must keep."""
    config = driver.build_config(
        {
            "algo": "ppo",
            "env": {"name": "playground/CartpoleBalance", "randomize": RANGES},
            "total_env_steps": 128,
            "num_chunks": 2,
            "eval_episodes": 1,
            "agent": {"num_envs": 4, "unroll_length": 16, "num_minibatches": 1, "num_epochs": 1},
        }
    )
    exp = driver.Experiment(config)
    randomized = exp.env.env
    assert isinstance(randomized, DomainRandomization) and randomized._attr == "_mjx_model"
    first, _ = exp.run_chunk(exp.init(), 0)
    assert_resumes_bitwise(exp, first, tmp_path)
    # env 1 of the batch, stepped by hand on the model its factors define
    env_step = jax.tree.map(lambda x: x[1], first.env_step)
    inner = env_step.state.inner.inner.inner  # AutoReset > EpisodeStats > TimeLimit > randomization
    playground = randomized.env._env
    playground._mjx_model = scaled_model(randomized.nominal, inner.factors)
    try:
        reference = jax.jit(playground.step)(inner.inner, jnp.array([0.8]))
    finally:
        playground._mjx_model = randomized.nominal
    ours = jax.jit(exp.env.step)(env_step.replace(state=env_step.state.inner.inner), jnp.array([0.8]))
    np.testing.assert_allclose(ours.obs, reference.obs, rtol=1e-6, atol=1e-6)
