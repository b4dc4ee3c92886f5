"""PAL (Fujimoto, Meger and Precup 2020: the uniformly sampled loss with the expected gradient of LAP), ``agent.replay:
pal``: the gradient against the authors' PAL formula, the weights against NumPy, the wiring of every registered
off-policy algorithm, uniform draws without priorities, config errors. Learning: BENCHMARKS.md (td3_pal_pendulum)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx import driver
from rlx.algos import ALGORITHMS, off_policy, td3
from rlx.buffers import PrioritizedReplayBuffer
from rlx.config import ConfigError, unread_fields
from rlx.envs import make
from rlx.ops import values

PENDULUM = make("gymnax/Pendulum-v1")
AGENT = {"num_envs": 2, "batch_size": 16, "buffer_size": 256, "learning_starts": 32, "replay": "pal"}


def td3_config(**agent):
    data = {
        "algo": "td3",
        "env": {"name": "gymnax/Pendulum-v1"},
        "agent": {**AGENT, "actor": {"hidden": [16]}, "critic": {"hidden": [16], "value": "huber"}, **agent},
    }
    return driver.build_config(data).agent


@pytest.mark.parametrize("floor", [1.0, 0.3])
def test_pal_with_a_huber_critic_of_the_floors_threshold_has_the_gradient_of_the_authors_pal_loss(floor):
    # their PAL-TD3 with floor k: sum over critics of mean PAL(delta_k) / mean_i max(max_k |delta_ik|, k)^alpha (held
    # constant), PAL(d) = k^alpha 0.5 d^2 below k, k |d|^(1 + alpha) / (1 + alpha) above: gradient k^alpha d below k,
    # k |d|^alpha sign(d) above (their TD3 uses k = 1, their DDQN k = 0.01, each with a Huber threshold of k)
    alpha = 0.4
    critic = {"hidden": [16], "value": "huber", "huber_delta": floor}
    config = td3_config(priority_exponent=alpha, priority_floor=floor, critic=critic)
    state = td3.init(config, PENDULUM, jax.random.PRNGKey(0), 10)
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    rng = np.random.default_rng(0)
    q = rng.normal(0.0, 2.0, (2, 64, 1)).astype(np.float32)
    target = rng.normal(0.0, 2.0, 64).astype(np.float32)

    def loss(outputs):
        return off_policy.critic_loss_and_error(
            driver.compiled_agent(config), state, batch, values.from_section(config.critic), outputs, target
        )

    (_, error), grad = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(q))
    delta = q[..., 0] - target  # [2, 64]
    assert (np.abs(delta) < floor).any() and (np.abs(delta) > floor).any()
    normalizer = np.mean(np.maximum(np.abs(delta).max(axis=0), floor) ** alpha)
    below = floor**alpha * delta
    pal_gradient = np.where(np.abs(delta) < floor, below, floor * np.abs(delta) ** alpha * np.sign(delta))
    np.testing.assert_allclose(np.asarray(grad)[..., 0], pal_gradient / (64 * normalizer), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(error, np.abs(delta).max(axis=0), rtol=1e-6)


def test_pal_weights_a_single_critics_loss_by_its_priority_over_the_batch_mean():
    # DQN-style: one error per sample; below the floor every sample weighs the same; weights held constant
    alpha, floor, eps = 0.6, 0.5, 1e-3
    config = td3_config(priority_exponent=alpha, priority_floor=floor, priority_eps=eps)
    state = td3.init(config, PENDULUM, jax.random.PRNGKey(0), 10)
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    delta = np.random.default_rng(1).normal(0.0, 1.0, 32).astype(np.float32)

    def mse(d):
        return off_policy.batch_loss(driver.compiled_agent(config), state, batch, 0.5 * d**2, jnp.abs(d))

    value, grad = jax.value_and_grad(mse)(jnp.asarray(delta))
    priority = (np.maximum(np.abs(delta), floor) + eps) ** alpha
    weights = priority / priority.mean()
    np.testing.assert_allclose(value, np.mean(weights * 0.5 * delta**2), rtol=1e-5)
    np.testing.assert_allclose(grad, weights * delta / 32, rtol=1e-5)


def test_td3s_gradient_step_weights_each_critic_by_its_own_error_over_the_batch_mean_of_the_larger():
    alpha = 0.4
    config = td3_config(priority_exponent=alpha, priority_floor=1.0, policy_noise=0.0, reward_scaling=0.15)
    state = td3.init(config, PENDULUM, jax.random.PRNGKey(0), 64)
    compiled = driver.compiled_agent(config)  # as a run's compiled code sees it: traced values from the state
    state = jax.jit(lambda s: jax.lax.fori_loop(0, 40, lambda _, s: td3.train_step(compiled, PENDULUM, s)[0], s))(state)
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    assert batch.weights is None and batch.replay_index is None  # uniform draws

    after, metrics = td3.gradient_step(compiled, PENDULUM, state, batch, jax.random.PRNGKey(2))
    critic_net, _ = off_policy.critic(config, PENDULUM)
    params = state.params
    next_action = td3.policy(config, PENDULUM, params.target_actor, batch.next_obs)
    next_q = np.asarray(critic_net.apply(params.target_critic, batch.next_obs, next_action))[..., 0]
    target = np.asarray(batch.returns) + np.asarray(batch.discount) * next_q.min(axis=0)
    delta = np.asarray(critic_net.apply(params.critic, batch.obs, batch.action))[..., 0] - target  # [2, B]
    assert (np.abs(delta) < 1).any() and (np.abs(delta) > 1).any()
    priority = (np.maximum(np.abs(delta), 1.0) + 1e-6) ** alpha
    larger = (np.maximum(np.abs(delta).max(axis=0), 1.0) + 1e-6) ** alpha
    huber = np.where(np.abs(delta) <= 1.0, 0.5 * delta**2, np.abs(delta) - 0.5)
    expected = np.sum(np.mean(priority / larger.mean() * huber, axis=-1))
    np.testing.assert_allclose(metrics["critic_loss"], expected, rtol=1e-5)
    assert jax.tree.structure(after) == jax.tree.structure(state)


OFF_POLICY = sorted(name for name, m in ALGORITHMS.items() if issubclass(m.Config, off_policy.OffPolicyConfig))
DISCRETE = ("dqn", "iqn", "iterated_dqn")


@pytest.mark.parametrize("algo", [name for name in OFF_POLICY if ALGORITHMS[name].Config.PAL])
def test_every_algorithm_that_allows_pal_weights_its_loss_with_it(algo, monkeypatch):
    # traced only (eval_shape): the gradient step's loss goes through loss_weights with the errors of every sample
    calls = []

    def recording(config, state, batch, errors):
        calls.append(errors.shape)
        return loss_weights(config, state, batch, errors)

    loss_weights = off_policy.loss_weights
    monkeypatch.setattr(off_policy, "loss_weights", recording)
    env_name = "gymnax/CartPole-v1" if algo in DISCRETE else "gymnax/Pendulum-v1"
    data = {"algo": algo, "env": {"name": env_name}, "agent": {**AGENT, "priority_floor": 1.0}}
    config, env, module = driver.build_config(data).agent, make(env_name), ALGORITHMS[algo]
    state = jax.eval_shape(lambda: module.init(config, env, jax.random.PRNGKey(0), 10))
    after = jax.eval_shape(lambda s: module.train_step(config, env, s)[0], state)
    assert calls and all(shape[-1] == AGENT["batch_size"] for shape in calls), calls
    assert jax.tree.structure(after) == jax.tree.structure(state)


def test_pal_draws_uniformly_and_keeps_no_priorities():
    config = td3_config(priority_floor=1.0)
    state = td3.init(config, PENDULUM, jax.random.PRNGKey(0), 10)
    assert not isinstance(off_policy.replay_buffer(config), PrioritizedReplayBuffer)
    assert state.total_iterations is None  # no beta schedule
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    assert off_policy.set_priorities(config, state, batch, jnp.ones(16)) is state


def test_pal_config_errors_are_one_line_before_compiling():
    with pytest.raises(ConfigError) as info:
        td3_config()
    assert str(info.value) == "agent.priority_floor: replay pal needs a floor > 0 (Fujimoto et al.: 1); got null"
    # every registered off-policy algorithm takes it; one written against the extension guide may not yet
    assert len(OFF_POLICY) >= 10 and all(ALGORITHMS[name].Config.PAL for name in OFF_POLICY)
    with pytest.raises(ConfigError) as info:
        off_policy.OffPolicyConfig(replay="pal", priority_floor=1.0).check()
    message = str(info.value)
    assert message.startswith("agent.replay: this algorithm's loss takes no PAL weights") and "\n" not in message
    unread = unread_fields(td3_config(priority_floor=1.0))  # importance weights belong to prioritized draws
    assert unread["importance_exponent_start"] == "read only with replay: prioritized; replay is pal"
    assert "priority_floor" not in unread and "priority_exponent" not in unread
