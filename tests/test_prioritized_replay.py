"""Prioritized replay (Schaul et al. 2016): draws against NumPy, importance weights, DQN's, i-DQN's, CQN's and TD3's
weighted losses and priority updates (TD3's also with LAP's floor and Huber loss), the ensemble's priority error, KL
priorities of categorical critics, the schedule of beta, config errors. Vmapping, checkpoints, exact resume and probes
are checked with the prioritized settings of IQN, i-DQN, CQN and TD3 (CrossQ's and consistency AC's: structure) in
test_conformance; learning in test_dqn."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import log_softmax_numpy

from rlx import buffers, driver
from rlx.algos import ALGORITHMS, cqn, dqn, iterated_dqn, off_policy, td3
from rlx.buffers import PrioritizedReplayBuffer, importance_weights
from rlx.config import ConfigError, unread_fields
from rlx.envs import make
from rlx.ops import values
from rlx.ops.distributional import categorical_projection


def stored_runs(writes: int, capacity: int, length: int) -> np.ndarray:
    """NumPy reference: ``[capacity]`` bool, whether the run of ``length`` slots starting at each slot holds
    consecutive writes after ``writes`` writes into a circular buffer of ``capacity`` slots."""
    written_at = np.full(capacity, -1)
    for t in range(writes):
        written_at[t % capacity] = t
    return np.array(
        [
            all(written_at[(s + k) % capacity] == written_at[s] + k >= 0 for k in range(length)) and written_at[s] >= 0
            for s in range(capacity)
        ]
    )


@pytest.mark.parametrize("writes", [5, 9, 14])  # not full; full with the head inside; wrapped twice
def test_draws_follow_the_priorities_of_stored_runs_only(writes):
    capacity, num_envs, length, batch = 6, 2, 3, 64
    buffer = PrioritizedReplayBuffer(capacity * num_envs, batch, num_envs, sequence_length=length)
    state = buffer.init({"t": jnp.zeros((), jnp.int32), "env": jnp.zeros((), jnp.int32)})
    for t in range(writes):
        state = buffer.add(state, {"t": jnp.array([t, t]), "env": jnp.array([0, 1])})
    rng = np.random.default_rng(writes)
    written = np.flatnonzero(np.tile(np.arange(capacity) < writes, num_envs))  # set_priorities takes written ones
    values = np.zeros(num_envs * capacity, np.float32)
    values[written] = rng.uniform(0.1, 3.0, written.size)
    state = buffer.set_priorities(state, jnp.asarray(written), jnp.asarray(values[written]))
    valid = np.tile(stored_runs(writes, capacity, length), num_envs)
    expected = values * valid / np.sum(values * valid)

    draws = jax.jit(jax.vmap(buffer.sample_prioritized, in_axes=(None, 0)))(
        state, jax.random.split(jax.random.PRNGKey(0), 400)
    )
    index = np.asarray(draws.index).ravel()
    np.testing.assert_allclose(np.asarray(draws.probability).ravel(), expected[index], rtol=1e-5)
    assert valid[index].all()  # never a run across the write head or into unwritten slots
    t, env = np.asarray(draws.items["t"]).reshape(-1, length), np.asarray(draws.items["env"]).reshape(-1, length)
    np.testing.assert_array_equal(t[:, 1:] - t[:, :-1], 1)  # consecutive steps of one env
    np.testing.assert_array_equal(env[:, 0], index // capacity)
    np.testing.assert_array_equal(t[:, 0] % capacity, index % capacity)
    counts = np.bincount(index, minlength=num_envs * capacity)[valid]
    mean = expected[valid] * index.size
    chi2 = np.sum((counts - mean) ** 2 / mean)
    assert chi2 < 35.0, (counts, mean)  # stratified draws spread less than independent ones; 11 dof at most


def test_cumulative_sums_never_rise_across_zeros_so_searches_never_land_on_one():
    # Trailing zeros (unwritten positions of a buffer not yet full) and zeros inside: a parallel prefix sum rounds
    # each position along its own path, and after the last positive value came out an ulp above it, so a point in
    # that ulp drew a zero-priority position (probability 0, an infinite importance weight: diverged TD3 runs).
    # _cdf picks blocks; within a block _positive_at_or_before (below) corrects such a search instead.
    rng = np.random.default_rng(0)
    x = np.zeros((64, 317), np.float32)
    x[:, :266] = rng.uniform(0, 300, (64, 266)).astype(np.float32) ** 0.6
    x[:, 100:110] = 0.0
    plain = np.asarray(jax.jit(lambda v: jax.lax.associative_scan(jnp.add, v, axis=1))(jnp.asarray(x)))
    assert (plain[:, 266:] > plain[:, 265:266]).any()  # the rounding this guards against happens on this input
    cdf = np.asarray(jax.jit(lambda v: buffers._cdf(v, axis=1))(jnp.asarray(x)))
    assert (np.diff(cdf, axis=1) >= 0).all()
    np.testing.assert_array_equal(cdf[:, 1:][x[:, 1:] == 0], cdf[:, :-1][x[:, 1:] == 0])  # level across zeros
    np.testing.assert_allclose(cdf[:, :266][x[:, :266] > 0], np.cumsum(x, axis=1)[:, :266][x[:, :266] > 0], rtol=1e-5)
    for row, sums in zip(x, cdf, strict=True):  # every boundary point, and just below the total
        points = np.concatenate([sums[np.isfinite(sums)], np.nextafter(sums[np.isfinite(sums)], 0)])
        points = np.minimum(points, np.nextafter(sums[-1], 0))
        assert (row[np.searchsorted(sums, points, side="right")] > 0).all()


def test_a_search_that_stops_on_a_zero_moves_to_the_positive_item_before_it():
    values = jnp.array([[0.0, 2.0, 0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 4.0], [0.0, 0.0, 5.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(buffers._positive_at_or_before(values, jnp.array([4, 3, 3])), [3, 0, 3])
    np.testing.assert_array_equal(buffers._positive_at_or_before(values, jnp.array([1, 5, 2])), [1, 5, 2])


def test_each_draw_takes_its_block_from_its_slice_of_the_total_priority():
    # 16 positions form 4 blocks of 4; blocks 0 and 2 carry half of the priority each, so of a batch of 4 the
    # draws 0-1 (slices [0, 1/2)) come from block 0 and draws 2-3 from block 2, whatever the key: stratified as in
    # Schaul et al., over blocks (items within a block are drawn by priority, independently).
    buffer = PrioritizedReplayBuffer(16, 4, 1)
    state = buffer.init({"x": jnp.zeros(())})
    for x in range(16):
        state = buffer.add(state, {"x": jnp.array([float(x)])})
    values = np.zeros(16, np.float32)
    values[[0, 1, 2, 3]] = [1.0, 2.0, 3.0, 4.0]
    values[[8, 9, 10, 11]] = [4.0, 3.0, 2.0, 1.0]
    state = buffer.set_priorities(state, jnp.arange(16), jnp.asarray(values))
    blocks = np.array(
        [np.asarray(buffer.sample_prioritized(state, jax.random.PRNGKey(k)).index) // 4 for k in range(50)]
    )
    np.testing.assert_array_equal(blocks, np.tile([0, 0, 2, 2], (50, 1)))


def test_new_transitions_get_the_largest_priority_set_so_far():
    buffer = PrioritizedReplayBuffer(8, 4, 2)
    state = buffer.init({"x": jnp.zeros(())})
    state = buffer.add(state, {"x": jnp.zeros(2)})
    np.testing.assert_array_equal(state.priorities[:, 0], [1.0, 1.0])  # Schaul et al.'s p_1 = 1
    state = buffer.set_priorities(state, jnp.array([0, 4]), jnp.array([3.0, 0.5]))
    assert float(state.max_priority) == 3.0
    state = buffer.set_priorities(state, jnp.array([0]), jnp.array([0.2]))  # a lower value keeps the maximum
    state = buffer.add(state, {"x": jnp.ones(2)})
    np.testing.assert_array_equal(state.priorities, np.float32([[0.2, 3.0, 0, 0], [0.5, 3.0, 0, 0]]))
    assert int(PrioritizedReplayBuffer.size(state)) == 4


def test_importance_weights_match_numpy():
    probability = np.array([0.5, 0.1, 0.02, 0.1], np.float32)
    for beta in (0.0, 0.4, 1.0):
        n = 50  # (N P)^-beta divided by its maximum over the batch; N cancels
        expected = (n * probability) ** -beta / np.max((n * probability) ** -beta)
        np.testing.assert_allclose(importance_weights(jnp.asarray(probability), beta), expected, rtol=1e-6)


SMALL = {
    "algo": "dqn",
    "env": {"name": "gymnax/CartPole-v1"},
    "total_env_steps": 4096,
    "agent": {
        "num_envs": 4,
        "batch_size": 32,
        "buffer_size": 256,
        "learning_starts": 64,
        "q": {"hidden": [16], "value": "mse"},
        "double_q": False,
        "replay": "prioritized",
        "priority_exponent": 0.7,
        "priority_eps": 0.01,
        "importance_exponent_start": 0.3,
        "importance_exponent_end": 0.9,
    },
}


def trained_state_and_batch(module, config, env, iterations: int, total_iterations: int = 1024):
    """The state after ``iterations`` train steps of a run of ``total_iterations`` (gradient steps have set
    priorities), its flat priorities, and a prioritized batch from it whose importance weights are checked against
    NumPy: ``(min P / P)^beta``, beta at ``iterations / total_iterations`` of SMALL's 0.3 -> 0.9."""
    state = module.init(config, env, jax.random.PRNGKey(0), total_iterations)
    compiled = driver.compiled_agent(config)  # as a run's compiled code sees it: traced values from the state
    run = jax.jit(lambda s: jax.lax.fori_loop(0, iterations, lambda _, s: module.train_step(compiled, env, s)[0], s))
    state = run(state)
    before = np.asarray(state.loop.buffer.priorities).ravel()
    assert len(np.unique(before)) > 10  # gradient steps have set priorities
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    probability = before[np.asarray(batch.replay_index)] / np.sum(before)  # single transitions: all stored drawable
    beta = 0.3 + (iterations / total_iterations) * (0.9 - 0.3)
    np.testing.assert_allclose(batch.weights, (probability.min() / probability) ** beta, rtol=1e-4)
    return state, before, batch


def assert_only_the_drawn_priorities_are_set(before, after_state, index, expected, atol=0.0) -> np.ndarray:
    """The drawn positions ``index`` hold ``expected`` after the gradient step, every other one its old value."""
    after = np.asarray(after_state.loop.buffer.priorities).ravel()
    np.testing.assert_allclose(after[index], expected, rtol=1e-5, atol=atol)
    untouched = np.ones(before.size, bool)
    untouched[index] = False
    np.testing.assert_array_equal(after[untouched], before[untouched])
    return after


def test_dqn_weights_its_loss_and_sets_the_drawn_priorities_to_their_td_errors():
    config = driver.build_config(SMALL).agent
    env = make("gymnax/CartPole-v1")
    state, before, batch = trained_state_and_batch(dqn, config, env, 300)
    index = np.asarray(batch.replay_index)

    after_state, metrics = dqn.gradient_step(config, env, state, batch, jax.random.PRNGKey(2))
    net, _ = dqn._network(config, env)
    q = np.asarray(net.apply(state.params.online, batch.obs))[..., 0]
    next_q = np.asarray(net.apply(state.params.target, batch.next_obs))[..., 0]
    action = np.asarray(batch.action)
    target = np.asarray(batch.returns) + np.asarray(batch.discount) * next_q.max(axis=-1)
    error = target - q[np.arange(len(action)), action]
    weighted = np.mean(np.asarray(batch.weights) * 0.5 * error**2)
    np.testing.assert_allclose(metrics["loss"], weighted, rtol=1e-5)
    after = assert_only_the_drawn_priorities_are_set(before, after_state, index, (np.abs(error) + 0.01) ** 0.7)
    largest = max(float(state.loop.buffer.max_priority), after[index].max())  # the largest ever set, maybe overwritten
    assert float(after_state.loop.buffer.max_priority) == pytest.approx(largest)


def test_beta_is_annealed_over_the_run():
    config = driver.build_config(SMALL).agent
    state = dqn.init(config, make("gymnax/CartPole-v1"), jax.random.PRNGKey(0), 100)
    for iteration, beta in [(0, 0.3), (50, 0.6), (100, 0.9)]:
        got = off_policy.importance_exponent(state.replace(iteration=jnp.int32(iteration)))
        assert float(got) == pytest.approx(beta)


def test_uniform_replay_draws_batches_without_weights():
    config = dataclasses.replace(driver.build_config(SMALL).agent, replay="uniform")
    state = dqn.init(config, make("gymnax/CartPole-v1"), jax.random.PRNGKey(0), 100)
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    assert batch.weights is None and batch.replay_index is None
    assert off_policy.set_priorities(config, state, batch, jnp.ones(32)) is state


def test_ensemble_loss_and_error_match_numpy():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.2, 1.0, 5).astype(np.float32)
    # scalar: sum over members of the weighted mean of 0.5 (Q_k - y)^2; the error is max_k |y - Q_k|
    q = rng.normal(size=(3, 5, 1)).astype(np.float32)
    target = rng.normal(size=5).astype(np.float32)
    loss, error = values.ensemble_loss_and_error(values.make("mse"), jnp.asarray(q), jnp.asarray(target), weights)
    np.testing.assert_allclose(loss, np.sum(np.mean(weights * 0.5 * (q[..., 0] - target) ** 2, axis=-1)), rtol=1e-6)
    np.testing.assert_allclose(error, np.max(np.abs(q[..., 0] - target), axis=0), rtol=1e-6)
    # C51: per-member cross-entropy to the target distribution; the error is the larger member's loss
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    target_probs = rng.dirichlet(np.ones(7), 5).astype(np.float32)
    per_sample = -np.sum(target_probs * log_softmax_numpy(logits), axis=-1)  # [2, 5]
    rep = values.make("c51", num_bins=7)
    loss, error = values.ensemble_loss_and_error(rep, jnp.asarray(logits), jnp.asarray(target_probs), weights)
    np.testing.assert_allclose(loss, np.sum(np.mean(weights * per_sample, axis=-1)), rtol=1e-5)
    np.testing.assert_allclose(error, per_sample.max(axis=0), rtol=1e-5)
    unweighted, _ = values.ensemble_loss_and_error(rep, jnp.asarray(logits), jnp.asarray(target_probs))
    np.testing.assert_allclose(unweighted, np.sum(np.mean(per_sample, axis=-1)), rtol=1e-5)


def huber(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= 1.0, 0.5 * x**2, np.abs(x) - 0.5)


@pytest.mark.parametrize("lap", [False, True], ids=["per", "lap"])
def test_td3_weights_its_critic_loss_and_sets_priorities_to_the_larger_critic_error(lap):
    # LAP's parts: a Huber critic loss and errors floored at priority_floor (the test keeps SMALL's beta schedule)
    data = {
        "algo": "td3",
        "env": {"name": "gymnax/Pendulum-v1"},
        "agent": {
            **{k: v for k, v in SMALL["agent"].items() if k not in ("q", "double_q")},
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16], "value": "huber" if lap else "mse"},
            "policy_noise": 0.0,  # a deterministic target action, so NumPy can rebuild the target
            "priority_floor": 1.0 if lap else None,
            "reward_scaling": 0.15 if lap else 1.0,  # errors on both sides of 1 (Pendulum's are 2-10 here)
        },
    }
    config = driver.build_config(data).agent
    env = make("gymnax/Pendulum-v1")
    state, before, batch = trained_state_and_batch(td3, config, env, 100)  # beta from the actor-critic's run length
    index = np.asarray(batch.replay_index)

    after_state, metrics = td3.gradient_step(driver.compiled_agent(config), env, state, batch, jax.random.PRNGKey(2))
    critic_net, _ = off_policy.critic(config, env)
    params = state.params
    next_action = td3.policy(config, env, params.target_actor, batch.next_obs)
    next_q = np.asarray(critic_net.apply(params.target_critic, batch.next_obs, next_action))[..., 0]  # [2, B]
    target = np.asarray(batch.returns) + np.asarray(batch.discount) * next_q.min(axis=0)
    error = np.asarray(critic_net.apply(params.critic, batch.obs, batch.action))[..., 0] - target
    per_sample = huber(error) if lap else 0.5 * error**2
    weighted = np.sum(np.mean(np.asarray(batch.weights) * per_sample, axis=-1))
    np.testing.assert_allclose(metrics["critic_loss"], weighted, rtol=1e-5)
    larger = np.abs(error).max(axis=0)
    if lap:
        assert (larger < 1.0).any() and (larger > 1.0).any()  # both sides of the floor are drawn
        larger = np.maximum(larger, 1.0)
    assert_only_the_drawn_priorities_are_set(before, after_state, index, (larger + 0.01) ** 0.7)


def test_the_priority_floor_is_a_traced_hyperparameter_only_when_set():
    # unset, hparams keep the leaves of runs written before it (they resume); set, sweeps can vmap over it
    base = {**SMALL, "agent": {**SMALL["agent"], "replay": "prioritized"}}
    env = make("gymnax/CartPole-v1")
    unset = dqn.init(driver.build_config(base).agent, env, jax.random.PRNGKey(0), 10).hparams
    floored = {**base, "agent": {**base["agent"], "priority_floor": 2.0}}
    state = dqn.init(driver.build_config(floored).agent, env, jax.random.PRNGKey(0), 10)
    assert unset.get("priority_floor") is None and float(state.hparams.priority_floor) == 2.0
    with pytest.raises(ConfigError, match=r"^agent.priority_floor: .*got 0"):
        driver.build_config({**base, "agent": {**base["agent"], "priority_floor": 0.0}})


def test_a_run_floors_its_priorities():
    # the driver's compiled config has the floor blanked; until 2026-12-07 priority() read it there, so no run floored
    agent = {**SMALL["agent"], "priority_floor": 1000.0}
    exp = driver.Experiment(driver.build_config({**SMALL, "total_env_steps": 512, "num_chunks": 1, "agent": agent}))
    state, _ = exp.run_chunk(exp.init(), 0)
    stored = np.asarray(state.loop.buffer.priorities).ravel()  # every slot rewritten since the gradient steps began
    np.testing.assert_allclose(stored, (1000.0 + 0.01) ** 0.7, rtol=1e-6)


@pytest.mark.parametrize("algo", ["sac", "simbav2", "mdpo_offpolicy"])  # TD3, CrossQ, consistency AC: conformance
def test_sac_family_sets_priorities_and_keeps_its_state_structure(algo):
    small = {"hidden": [16]}
    data = {
        "algo": algo,
        "env": {"name": "gymnax/Pendulum-v1"},
        "agent": {
            "num_envs": 2,
            "batch_size": 16,
            "buffer_size": 256,
            "learning_starts": 32,
            "actor": small,
            "critic": small,
            "replay": "prioritized",
        },
    }
    config = driver.build_config(data).agent
    env = make("gymnax/Pendulum-v1")
    module = ALGORITHMS[algo]
    state = module.init(config, env, jax.random.PRNGKey(0), 64)
    assert int(state.total_iterations) == 64
    after = jax.jit(lambda s: jax.lax.fori_loop(0, 40, lambda _, s: module.train_step(config, env, s)[0], s))(state)
    assert jax.tree.structure(after) == jax.tree.structure(state)
    written = np.asarray(after.loop.buffer.priorities)[:, :40]
    assert len(np.unique(written)) > 20  # drawn transitions got their own priorities
    assert np.all(np.isfinite(written)) and np.all(written > 0)


def test_iterated_dqn_weights_each_heads_loss_and_sets_priorities_to_the_heads_mean_error():
    agent = {k: v for k, v in SMALL["agent"].items() if k != "double_q"}
    config = driver.build_config({**SMALL, "algo": "iterated_dqn", "agent": agent}).agent
    env = make("gymnax/CartPole-v1")
    state, before, batch = trained_state_and_batch(iterated_dqn, config, env, 300)

    after_state, metrics = iterated_dqn.gradient_step(config, env, state, batch, jax.random.PRNGKey(2))
    net, _ = dqn._network(config, env)
    apply = jax.vmap(net.apply, in_axes=(0, None))
    q = np.asarray(apply(state.params.online, batch.obs))[..., 0]  # [K, B, A]
    next_q = np.asarray(apply(state.params.target, batch.next_obs))[..., 0]
    action = np.asarray(batch.action)
    target = np.asarray(batch.returns) + np.asarray(batch.discount) * next_q.max(axis=-1)  # [K, B], no double Q
    error = target - q[:, np.arange(len(action)), action]
    head_losses = np.mean(np.asarray(batch.weights) * 0.5 * error**2, axis=-1)
    np.testing.assert_allclose(metrics["loss"], head_losses.sum(), rtol=1e-5)
    np.testing.assert_allclose([metrics["loss_first_head"], metrics["loss_last_head"]], head_losses[[0, -1]], rtol=1e-5)
    expected = (np.abs(error).mean(axis=0) + 0.01) ** 0.7
    assert_only_the_drawn_priorities_are_set(before, after_state, np.asarray(batch.replay_index), expected)


def test_cqn_weights_its_loss_and_sets_priorities_to_the_mean_error_over_levels_and_dimensions():
    agent = {k: v for k, v in SMALL["agent"].items() if k != "double_q"}
    # n_step 1: every stored transition is drawable, as trained_state_and_batch's reference assumes
    agent.update(q={"hidden": [16], "value": "mse"}, n_step=1, rollout_length=1)
    agent.update(utd_ratio=1.0, feature_dim=8, levels=2, action_bins=3)
    config = driver.build_config({"algo": "cqn", "env": {"name": "gymnax/Pendulum-v1"}, "agent": agent}).agent
    env = make("gymnax/Pendulum-v1")
    state, before, batch = trained_state_and_batch(cqn, config, env, 100)

    key = jax.random.PRNGKey(2)
    after_state, metrics = cqn.gradient_step(config, env, state, batch, key)
    net, _ = cqn._network(config, env)
    params, bins = state.params, config.action_bins
    next_path = cqn.greedy_path(config, env, params.online, batch.next_obs, key, state.hparams.tie_break)
    next_q = np.asarray(cqn.path_outputs(net, params.target, batch.next_obs, next_path, bins))[..., 0]  # [B, L, D]
    taken_path = cqn.encode_action(batch.action, config.levels, bins)
    q = np.asarray(cqn.path_outputs(net, params.online, batch.obs, taken_path, bins))[..., 0]
    target = np.asarray(batch.returns)[:, None, None] + np.asarray(batch.discount)[:, None, None] * next_q
    error = target - q
    weighted = np.mean(np.asarray(batch.weights) * np.mean(0.5 * error**2, axis=(1, 2)))
    np.testing.assert_allclose(metrics["loss"], weighted, rtol=1e-5)
    expected = (np.abs(error).mean(axis=(1, 2)) + 0.01) ** 0.7
    assert_only_the_drawn_priorities_are_set(before, after_state, np.asarray(batch.replay_index), expected)


def test_an_algorithm_that_sets_no_priorities_refuses_prioritized_replay_in_one_line():
    # every registered off-policy algorithm sets priorities; one written against the extension guide may not yet
    off_policy_algos = [m for m in ALGORITHMS.values() if issubclass(m.Config, off_policy.OffPolicyConfig)]
    assert len(off_policy_algos) >= 10 and all(m.Config.PRIORITIZED_REPLAY for m in off_policy_algos)
    with pytest.raises(ConfigError) as info:
        off_policy.OffPolicyConfig(replay="prioritized").check()
    message = str(info.value)
    assert message.startswith("agent.replay: this algorithm's gradient step sets no priorities") and "\n" not in message


def kl_numpy(logits: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """NumPy reference: ``sum p (log p - log softmax(logits))`` over the last axis, ``0 log 0 = 0``."""
    log_p = np.log(np.where(probs > 0, probs, 1.0))
    return np.sum(probs * (log_p - log_softmax_numpy(logits)), axis=-1)


def test_kl_priority_error_is_the_cross_entropy_less_the_target_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 7)).astype(np.float32)
    probs = rng.dirichlet(np.ones(7), 6).astype(np.float32)
    probs[0] = [0, 0, 0.5, 0.5, 0, 0, 0]  # a target on two atoms: empty atoms add nothing
    for kind in ("c51", "hl_gauss"):
        rep = values.make(kind, num_bins=7, kl_priority=True)
        target = jnp.asarray(probs) if kind == "c51" else jnp.asarray(rng.uniform(-12, 12, 6), jnp.float32)
        target_probs = np.asarray(rep.target_probs(target))
        loss = rep.loss(jnp.asarray(logits), target)
        error = values.priority_error(rep, jnp.asarray(logits), target, loss)
        np.testing.assert_allclose(error, kl_numpy(logits, target_probs), rtol=1e-4, atol=1e-6)
        # a prediction equal to its target has error 0 (the cross-entropy would rank it by the target's entropy)
        matched = jnp.log(jnp.asarray(np.maximum(target_probs, 1e-30)))
        matched_error = values.priority_error(rep, matched, target, rep.loss(matched, target))
        np.testing.assert_allclose(matched_error, 0.0, atol=1e-5)
        plain = dataclasses.replace(rep, kl_priority=False)  # the cross-entropy loss itself (Dopamine's)
        np.testing.assert_array_equal(plain.loss(jnp.asarray(logits), target), loss)
        np.testing.assert_array_equal(values.priority_error(plain, jnp.asarray(logits), target, loss), loss)


def test_an_ensemble_with_kl_priorities_ranks_by_the_larger_member_kl():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    target_probs = rng.dirichlet(np.ones(7), 5).astype(np.float32)
    rep = values.make("c51", num_bins=7, kl_priority=True)
    loss, error = values.ensemble_loss_and_error(rep, jnp.asarray(logits), jnp.asarray(target_probs))
    plain_loss, _ = values.ensemble_loss_and_error(dataclasses.replace(rep, kl_priority=False), logits, target_probs)
    np.testing.assert_array_equal(loss, plain_loss)
    np.testing.assert_allclose(error, kl_numpy(logits, target_probs).max(axis=0), rtol=1e-4)


def test_the_sections_priority_error_reaches_the_value_representation_of_dqn_and_the_actor_critics():
    kl = {"value": "c51", "priority_error": "kl"}
    dqn_config = driver.build_config({**SMALL, "agent": {**SMALL["agent"], "q": {"hidden": [16], **kl}}}).agent
    assert dqn._network(dqn_config, make("gymnax/CartPole-v1"))[1].kl_priority
    td3_config = driver.build_config({"algo": "td3", "agent": {"critic": kl}}).agent
    assert off_policy.critic(td3_config, make("gymnax/Pendulum-v1"))[1].kl_priority
    cross_entropy = driver.build_config({"algo": "td3", "agent": {"critic": {"value": "c51"}}}).agent
    assert not off_policy.critic(cross_entropy, make("gymnax/Pendulum-v1"))[1].kl_priority
    # under a scalar or quantile value it is never read: a note, as every field its settings leave unread
    scalar = driver.build_config({"algo": "td3", "agent": {"critic": {"priority_error": "kl"}}}).agent
    assert "critic.priority_error" in unread_fields(scalar)
    assert "critic.priority_error" not in unread_fields(td3_config)
    with pytest.raises(ConfigError, match=r"priority_error.*cross_entropy.*kl"):
        driver.build_config({"algo": "td3", "agent": {"critic": {"priority_error": "kullback"}}})


def test_dqn_with_kl_priorities_keeps_its_loss_and_sets_the_drawn_priorities_to_the_kl_divergence():
    c51 = {"hidden": [16], "value": "c51", "num_bins": 11, "v_min": 0.0, "v_max": 50.0, "priority_error": "kl"}
    config = driver.build_config({**SMALL, "agent": {**SMALL["agent"], "q": c51}}).agent
    env = make("gymnax/CartPole-v1")
    state, before, batch = trained_state_and_batch(dqn, config, env, 300)
    index = np.asarray(batch.replay_index)

    after_state, metrics = dqn.gradient_step(config, env, state, batch, jax.random.PRNGKey(2))
    net, rep = dqn._network(config, env)
    logits = np.asarray(net.apply(state.params.online, batch.obs))[np.arange(len(index)), np.asarray(batch.action)]
    next_logits = np.asarray(net.apply(state.params.target, batch.next_obs))  # [batch, actions, atoms]
    next_probs = np.exp(next_logits) / np.sum(np.exp(next_logits), axis=-1, keepdims=True)
    next_action = np.argmax(next_probs @ np.asarray(rep.atoms), axis=-1)  # double_q off: the target net picks
    chosen = next_probs[np.arange(len(index)), next_action]
    target = np.asarray(categorical_projection(chosen, rep.atoms, batch.returns, batch.discount))
    cross_entropy = -np.sum(target * log_softmax_numpy(logits), axis=-1)
    np.testing.assert_allclose(metrics["loss"], np.mean(np.asarray(batch.weights) * cross_entropy), rtol=1e-5)
    kl = kl_numpy(logits, target)
    assert np.all(kl < cross_entropy - 0.05)  # projected targets spread over atoms: the two rank differently
    # float32 KL as the cross-entropy less the entropy: absolute rounding of the cross-entropy's size, ~1e-6
    assert_only_the_drawn_priorities_are_set(before, after_state, index, (kl + 0.01) ** 0.7, atol=1e-5)
