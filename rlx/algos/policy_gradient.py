"""The on-policy actor-critic that PPO, A2C (a PPO preset) and on-policy MDPO are built on: the policy and
value networks (feed-forward or recurrent), the rollout, GAE(lambda) advantages that bootstrap on truncation
and not on termination, and ``num_epochs`` passes of ``num_minibatches`` gradient steps on an objective the
algorithm supplies (:func:`iterate`). Discrete actions use a categorical policy, continuous ones a Gaussian
squashed by tanh (or clipped) into [-1, 1] (or Bernoulli / Gaussian-mixture heads: ``agent.policy``).

With ``agent.policy.recurrent`` (and/or ``agent.value.recurrent``) ``gru`` or ``lstm``, that network carries a
hidden state (``state.memory``) through the rollout, zeroed where an episode starts; the update recomputes it
over each env's whole unroll from the carry the rollout began with (truncated BPTT over the unroll, no burn-in),
and minibatches are cut by env so sequences stay whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx import nets
from rlx.algos import common
from rlx.config import ConfigError, field
from rlx.envs import Env, training_env
from rlx.nets import MLP, Model, Net, PolicyNet
from rlx.nets.recurrent import RecurrentMLP, init_network, unrolled, with_next, zero_carry
from rlx.nets.spec import network_input
from rlx.ops.losses import approx_kl, clipped_value_loss, squared_value_loss
from rlx.ops.normalization import RunningStats, update_stats
from rlx.ops.returns import gae, vtrace_advantages
from rlx.rollout import PolicyStep, unroll


@dataclasses.dataclass(frozen=True)
class PolicyGradientConfig(common.RolloutConfig):
    """The actor-critic rollout's hyperparameters that PPO and MDPO share (the rollout's num_envs,
    unroll_length, num_minibatches, num_epochs, the networks, GAE and the optimizer). ``traced`` ones live in
    the train state and can be vmapped over."""

    # Static: they fix shapes or the program.
    policy: PolicyNet = field(
        default_factory=lambda: PolicyNet(hidden=(64, 64), activation="tanh", output_scale=0.01),
        doc="policy network and action distribution",
    )
    value: Net = field(default_factory=lambda: Net(hidden=(64, 64), activation="tanh"), doc="value network")
    normalize_observations: bool = field(True, doc="Welford running mean/std of observations")
    normalize_advantages: bool = field(True, doc="per minibatch")
    advantages: str = field(
        "rollout",
        choices=("rollout", "minibatch"),
        doc="rollout: GAE once per iteration with the value network that collected it (PureJaxRL, CleanRL); "
        "minibatch: recomputed in every minibatch with the current value network, minibatches of whole "
        "gae_segment_length segments (brax.training, so Playground's tuned settings)",
    )
    gae_segment_length: int = field(
        0, ge=0, doc="GAE traces end, bootstrapping from V, every this many steps (brax: its unroll_length); 0: unroll"
    )
    advantage_estimator: str = field(
        "gae",
        choices=("gae", "vtrace"),
        doc="the policy's advantage: gae: lambda-return - V(s_t); vtrace: r_t + gamma * (next step's lambda-return) - "
        "V(s_t), IMPALA's with importance weights 1, brax.training's PPO (value targets are the lambda-returns either way)",
    )
    lr_schedule: str = field("constant", choices=("constant", "linear"), doc="linear: anneal to 0")
    adam_eps: float = field(1e-5, gt=0)
    # Traced: shape-free, vmappable.
    learning_rate: float = field(3e-4, traced=True, gt=0)
    gamma: float = field(0.99, traced=True, ge=0, le=1, doc="discount")
    gae_lambda: float = field(0.95, traced=True, ge=0, le=1)
    value_coef: float = field(0.5, traced=True, ge=0)
    entropy_coef: float = field(0.01, traced=True, ge=0)
    max_grad_norm: float | None = field(0.5, traced=True, gt=0, doc="global gradient-norm clip (null: none)")
    value_clip_epsilon: float | None = field(
        None,
        traced=True,
        gt=0,
        doc="clip V to within this of the collecting network's V in the value loss, taking the larger error "
        "(PureJaxRL, CleanRL; brax's clipping_epsilon_value); null: unclipped",
    )
    reward_scaling: float = field(1.0, traced=True, gt=0, doc="rewards are multiplied by this")

    MOVED: ClassVar[dict[str, str]] = {
        "policy_hidden": "policy.hidden",
        "value_hidden": "value.hidden",
        "activation": "policy.activation (and value.activation)",
        "action_squash": "policy.squash",
        "min_std": "policy.min_std",
    }

    RECURRENT: ClassVar[bool] = False  # whether the algorithm accepts recurrent networks

    def check(self) -> None:
        for name in ("policy", "value"):  # the importance ratio needs the same network at collection and update
            section = getattr(self, name)
            common.check_network(section, f"agent.{name}.", dropout=False, batch_renorm=False, recurrent=self.RECURRENT)
        super().check()
        if recurrent(self) and self.num_envs % self.num_minibatches:
            raise ConfigError(
                f"agent.num_minibatches: with recurrent networks minibatches are cut by env, so it must divide "
                f"num_envs = {self.num_envs}; got {self.num_minibatches}"
            )
        if self.unroll_length % segment_length(self):
            raise ConfigError(
                f"agent.gae_segment_length: must divide unroll_length = {self.unroll_length}; "
                f"got {self.gae_segment_length}"
            )
        if self.advantages == "minibatch":
            if recurrent(self):
                raise ConfigError(
                    "agent.advantages: minibatch needs feed-forward networks; allowed with recurrent: rollout"
                )
            segments = self.num_envs * self.unroll_length // segment_length(self)
            if segments % self.num_minibatches:
                raise ConfigError(
                    f"agent.num_minibatches: with advantages: minibatch, minibatches are cut into whole segments, so "
                    f"it must divide num_envs*unroll_length/gae_segment_length = {segments}; got {self.num_minibatches}"
                )


def segment_length(config: PolicyGradientConfig) -> int:
    """Steps per GAE segment (the whole unroll unless ``gae_segment_length`` cuts it)."""
    return config.gae_segment_length or config.unroll_length


def recurrent(config: PolicyGradientConfig) -> bool:
    return config.policy.recurrent != "none" or config.value.recurrent != "none"


def clips_values(hparams: common.Hyperparams) -> bool:
    """Whether the value loss is clipped (``value_clip_epsilon`` set, so in the state's hyperparameters: the
    compiled code's config has its traced fields blanked), so batches carry the collecting network's V."""
    return hparams.get("value_clip_epsilon") is not None


@struct.dataclass
class Params:
    policy: Any
    value: Any


@struct.dataclass
class Memory:
    """The recurrent networks' carries ``[num_envs, ...]`` (``()`` for a feed-forward one)."""

    policy: Any
    value: Any


State = common.RolloutState  # params: Params


@struct.dataclass
class Rollout:
    """Time-major ``[unroll_length, num_envs, ...]`` transitions."""

    obs: jax.Array
    raw_action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array  # true next observation (final one when the episode ended)
    start: jax.Array  # bool: obs begins an episode (recurrent carries were zeroed before it)
    initial_memory: Any  # Memory at the rollout's first step, [num_envs, ...]


def steps_per_iteration(config: PolicyGradientConfig) -> int:
    """Agent steps collected per ``train_step``."""
    return config.num_envs * config.unroll_length


# ---------------------------------------------------------------- networks


def _networks(config: PolicyGradientConfig, env: Env) -> tuple[Any, Any]:
    """The policy and value networks: a :class:`Model` of an MLP, or a :class:`RecurrentMLP` (recurrent section)."""

    def build(section: Net, out_shape: tuple[int, ...]) -> Any:
        obs_ndim = len(network_input(section, env.observation_shape))
        if section.recurrent != "none":
            return RecurrentMLP(section, out_shape, obs_ndim)
        return Model(MLP(section, out_shape, obs_ndim))

    return build(config.policy, (nets.policy_outputs(env.action_space, config.policy),)), build(config.value, (1,))


def rollout_memory(config: PolicyGradientConfig, num: int) -> Memory:
    """The rollout's zero carries for ``num`` envs, of both networks (``()`` for a feed-forward one)."""
    return Memory(
        *(zero_carry(section, num) if section.recurrent != "none" else () for section in (config.policy, config.value))
    )


def initial_memory(config: PolicyGradientConfig, num: int) -> Memory:
    """What acting threads through an episode, zero for ``num`` envs: the policy network's carry alone (``value``
    is ``()``: a recurrent critic's carry, and the privileged state it may read, belong to training only)."""
    return rollout_memory(config, num).replace(value=())


def _prepare_obs(config: PolicyGradientConfig, obs_stats: RunningStats, obs: jax.Array) -> jax.Array:
    return common.network_obs(config, obs_stats, obs)


def policy_distribution(config: PolicyGradientConfig, env: Env, params: Params, obs: jax.Array):
    """The policy's action distribution for (already normalized) ``obs``."""
    outputs = _networks(config, env)[0].apply(params.policy, obs)
    return nets.policy_distribution(config.policy, env.action_space, outputs)


def value_estimate(config: PolicyGradientConfig, env: Env, params: Params, obs: jax.Array) -> jax.Array:
    """``V(obs)`` for (already normalized) ``obs``."""
    return _networks(config, env)[1].apply(params.value, obs)[..., 0]


def _optimizer(
    config: PolicyGradientConfig, hparams: common.Hyperparams, learning_rate: jax.Array
) -> optax.GradientTransformation:
    return common.optimizer(learning_rate, hparams.get("max_grad_norm"), eps=config.adam_eps)


# ---------------------------------------------------------------- init


def init(config: PolicyGradientConfig, env: Env, key: jax.Array, total_iterations: int) -> State:
    """Fresh train state; ``total_iterations`` sets the learning-rate schedule's length."""
    policy_net, value_net = _networks(config, env)
    key, policy_key, value_key, env_key = jax.random.split(key, 4)
    params = Params(
        *(init_network(n, k, common.dummy_obs(env)) for n, k in ((policy_net, policy_key), (value_net, value_key)))
    )
    hparams = common.Hyperparams.from_config(config)
    opt_state = _optimizer(config, hparams, hparams.learning_rate).init(params)
    return common.start_rollout(
        config,
        env,
        env_key,
        total_iterations,
        params=params,
        opt_state=opt_state,
        hparams=hparams,
        key=key,
        memory=rollout_memory(config, config.num_envs),
    )


# ---------------------------------------------------------------- collect


def collect(config: PolicyGradientConfig, env: Env, state: State) -> tuple[State, Rollout, dict]:
    """Runs the current policy for ``unroll_length`` steps in every env."""

    def policy(obs, starts, memory, key):
        norm_obs = _prepare_obs(config, state.obs_stats, obs)
        policy_carry, dist = step_policy(config, env, state.params, memory.policy, norm_obs, starts)
        # the value network's carry follows the episode too: the update recomputes V from the rollout's first carry
        one_step = jax.tree.map(lambda x: x[None], norm_obs)
        value_carry, _ = unrolled(_networks(config, env)[1], state.params.value, memory.value, one_step, starts[None])
        memory = Memory(policy_carry, value_carry)
        raw_action = dist.sample(key)
        extras = {"raw_action": raw_action, "log_prob": dist.log_prob(raw_action), "start": starts}
        return PolicyStep(dist.env_action(raw_action), extras, memory)

    envs = training_env(env, config.num_envs)
    out = unroll(envs, policy, state.env_step, state.memory, state.key, config.unroll_length)
    t = out.transitions
    rollout = Rollout(
        t.obs,
        t.extras["raw_action"],
        t.extras["log_prob"],
        t.reward,
        t.terminated,
        t.truncated,
        t.next_obs,
        t.extras["start"],
        state.memory,
    )
    return state.replace(env_step=out.env_step, key=out.key, memory=out.carry), rollout, out.totals.metrics()


def step_policy(
    config: PolicyGradientConfig, env: Env, params: Params, carry: Any, obs: jax.Array, starts: jax.Array
) -> tuple[Any, Any]:
    """One step of the policy network at (normalized) ``obs [B, ...]`` from its ``carry`` (``()`` feed-forward):
    the next carry and the action distribution."""
    one_step = jax.tree.map(lambda x: x[None], obs)  # a time axis of length 1
    carry, outputs = unrolled(_networks(config, env)[0], params.policy, carry, one_step, starts[None])
    return carry, nets.policy_distribution(config.policy, env.action_space, outputs[0])


# ---------------------------------------------------------------- update


@struct.dataclass
class Batch:
    """Flat ``[batch, ...]`` samples for the loss (``[segments, length, ...]`` from :func:`with_advantages`)."""

    obs: jax.Array  # normalized
    raw_action: jax.Array
    log_prob: jax.Array
    advantages: jax.Array
    targets: jax.Array
    old_values: Any  # V by the collecting network, for value_clip_epsilon (None without it)


@struct.dataclass
class SequenceBatch(Batch):
    """Env-major ``[envs, unroll_length, ...]`` sequences for recurrent networks, with each env's episode starts
    and its carries at the first step (``memory``, ``[envs, ...]``)."""

    start: jax.Array
    memory: Memory


def batch_outputs(config: PolicyGradientConfig, env: Env, params: Params, batch: Batch) -> tuple[Any, jax.Array]:
    """The action distribution and ``V`` at the batch's observations (over whole sequences for a
    :class:`SequenceBatch`, recomputing the recurrent carries from ``batch.memory``)."""
    if not isinstance(batch, SequenceBatch):
        return policy_distribution(config, env, params, batch.obs), value_estimate(config, env, params, batch.obs)
    policy_net, value_net = _networks(config, env)
    time_major = lambda x: jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), x)  # noqa: E731
    obs, starts = time_major(batch.obs), time_major(batch.start)
    _, outputs = unrolled(policy_net, params.policy, batch.memory.policy, obs, starts)
    _, values = unrolled(value_net, params.value, batch.memory.value, obs, starts)
    dist = nets.policy_distribution(config.policy, env.action_space, time_major(outputs))
    return dist, time_major(values[..., 0])


def with_value_and_entropy(
    config: PolicyGradientConfig,
    env: Env,
    params: Params,
    hparams: common.Hyperparams,
    batch: Batch,
    dist: Any,
    policy_loss: jax.Array,
    log_prob: jax.Array,
    key: jax.Array,
    values: jax.Array | None = None,
) -> tuple[jax.Array, dict]:
    """``policy_loss + value_coef * value loss - entropy_coef * entropy`` and the metrics PPO and MDPO both log
    (``log_prob``: the current policy's log-probabilities of the batch's actions; ``values``: ``V`` at the batch,
    computed here if not given)."""
    if values is None:
        values = value_estimate(config, env, params, batch.obs)
    value_clip = hparams.get("value_clip_epsilon")
    if value_clip is None:
        value_loss = squared_value_loss(values, batch.targets)
    else:
        value_loss = clipped_value_loss(values, batch.old_values, batch.targets, value_clip)
    entropy = jnp.mean(dist.entropy(key))
    loss = policy_loss + hparams.value_coef * value_loss - hparams.entropy_coef * entropy
    metrics = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": approx_kl(log_prob - batch.log_prob),
    }
    return loss, metrics


def make_batch(config: PolicyGradientConfig, env: Env, state: State, rollout: Rollout) -> Batch | SegmentBatch:
    """Advantages and value targets (GAE) for a rollout, flattened over time and envs (recurrent networks: a
    :class:`SequenceBatch` of whole env sequences; ``advantages: minibatch``: a :class:`SegmentBatch`, whose
    advantages each minibatch computes)."""
    hp = state.hparams
    obs = _prepare_obs(config, state.obs_stats, rollout.obs)
    next_obs = _prepare_obs(config, state.obs_stats, rollout.next_obs)
    length = segment_length(config)
    if config.advantages == "minibatch":
        return _segment_batch(config, env, state, rollout, obs, next_obs, length)
    segment_end = (jnp.arange(config.unroll_length) % length == length - 1)[:, None]  # [T, 1]
    if config.value.recurrent == "none":
        values = value_estimate(config, env, state.params, obs)
        next_values = value_estimate(config, env, state.params, next_obs)
    else:
        value_net = _networks(config, env)[1]
        carry = rollout.initial_memory.value
        values, next_values = (
            v[..., 0] for v in with_next(value_net, state.params.value, carry, obs, next_obs, rollout.start)
        )
    advantages, targets = gae(
        rollout.reward * hp.reward_scaling,
        values,
        next_values,
        rollout.terminated,
        rollout.truncated | segment_end,  # a segment's end bootstraps from V(s') and starts a new trace
        hp.gamma,
        hp.gae_lambda,
    )
    if config.advantage_estimator == "vtrace":
        advantages = vtrace_advantages(
            advantages, rollout.terminated, rollout.truncated | segment_end, hp.gamma, hp.gae_lambda
        )
    old_values = values if clips_values(hp) else None
    batch = Batch(obs, rollout.raw_action, rollout.log_prob, advantages, targets, old_values)
    if recurrent(config):
        env_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch)
        fields = {f.name: getattr(env_major, f.name) for f in dataclasses.fields(Batch)}
        return SequenceBatch(**fields, start=jnp.swapaxes(rollout.start, 0, 1), memory=rollout.initial_memory)
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


@struct.dataclass
class SegmentBatch:
    """``[segments, gae_segment_length, ...]`` transitions (each env's unroll cut into segments) whose advantages
    every minibatch recomputes with the current value network (``advantages: minibatch``, :func:`with_advantages`)."""

    obs: jax.Array  # normalized
    raw_action: jax.Array
    log_prob: jax.Array
    reward: jax.Array  # scaled by reward_scaling
    terminated: jax.Array
    truncated: jax.Array
    truncation_value: jax.Array  # V(final observation) where truncated, by the collecting network (0 elsewhere)
    bootstrap_obs: jax.Array  # [segments, ...] the observation after each segment's last step
    old_values: Any  # V by the collecting network, for value_clip_epsilon (None without it)


def _segment_batch(
    config: PolicyGradientConfig,
    env: Env,
    state: State,
    rollout: Rollout,
    obs: jax.Array,
    next_obs: jax.Array,
    length: int,
) -> SegmentBatch:
    def segments(x):  # [T, E, ...] -> [T / length * E, length, ...], each env's steps in order
        x = x.reshape((x.shape[0] // length, length, *x.shape[1:]))
        x = jnp.swapaxes(x, 1, 2)
        return x.reshape((-1, *x.shape[2:]))

    # Truncations are rare (once an episode), so V at their final observations comes from the collecting network,
    # once per iteration, rather than a second forward pass over every next observation in every minibatch.
    truncation_value = jnp.where(rollout.truncated, value_estimate(config, env, state.params, next_obs), 0.0)
    last_next_obs = jax.tree.map(lambda x: segments(x)[:, -1], next_obs)
    old_values = segments(value_estimate(config, env, state.params, obs)) if clips_values(state.hparams) else None
    return SegmentBatch(
        *(jax.tree.map(segments, x) for x in (obs, rollout.raw_action, rollout.log_prob)),
        *(segments(x) for x in (rollout.reward * state.hparams.reward_scaling, rollout.terminated, rollout.truncated)),
        segments(truncation_value),
        last_next_obs,
        old_values,
    )


def with_advantages(
    config: PolicyGradientConfig,
    env: Env,
    params: Params,
    hparams: common.Hyperparams,
    batch: Batch | SegmentBatch,
    values: jax.Array,
) -> Batch:
    """The minibatch with its advantages and value targets: ``batch`` itself when they were computed at collection;
    for a :class:`SegmentBatch`, GAE over each segment from ``values`` (``V`` by ``params`` at its observations,
    ``[segments, length]``) and ``V`` by ``params`` after its last step, gradients stopped (brax.training's PPO)."""
    if not isinstance(batch, SegmentBatch):
        return batch
    values = jax.lax.stop_gradient(values)
    bootstrap = jax.lax.stop_gradient(value_estimate(config, env, params, batch.bootstrap_obs))
    following = jnp.concatenate([values[:, 1:], bootstrap[:, None]], axis=1)  # V(s_{t+1}) within the segment
    stale = batch.truncated.at[:, -1].set(False)  # a truncation at the segment's end has its V in `bootstrap`
    next_values = jnp.where(stale, batch.truncation_value, following)
    time_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    terminated, truncated = time_major(batch.terminated), time_major(batch.truncated)
    advantages, targets = gae(
        *(time_major(x) for x in (batch.reward, values, next_values)),
        terminated,
        truncated,
        hparams.gamma,
        hparams.gae_lambda,
    )
    if config.advantage_estimator == "vtrace":  # a segment's last step has no next step in it: A_t there
        advantages = vtrace_advantages(advantages, terminated, truncated, hparams.gamma, hparams.gae_lambda)
    return Batch(
        batch.obs, batch.raw_action, batch.log_prob, time_major(advantages), time_major(targets), batch.old_values
    )


def update(config: PolicyGradientConfig, env: Env, state: State, batch: Any, loss: Callable) -> tuple[State, dict]:
    """``num_epochs`` x ``num_minibatches`` gradient steps on ``batch`` of ``loss(params, minibatch, key) ->
    (loss, metrics)``."""
    hp = state.hparams
    learning_rate = hp.learning_rate * (1.0 - common.progress(state) if config.lr_schedule == "linear" else 1.0)
    optimizer = _optimizer(config, hp, learning_rate)
    grad_fn = jax.grad(loss, has_aux=True)

    def gradient_step(params, opt_state, minibatch, key):
        grads, metrics = grad_fn(params, minibatch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics["grad_norm"] = optax.global_norm(grads)
        return optax.apply_updates(params, updates), opt_state, metrics

    params, opt_state, key, metrics = common.minibatch_epochs(
        gradient_step, state.params, state.opt_state, state.key, batch, config.num_epochs, config.num_minibatches
    )
    metrics["learning_rate"] = learning_rate
    return state.replace(params=params, opt_state=opt_state, key=key), metrics


def iterate(
    config: PolicyGradientConfig, env: Env, state: State, batch_fn: Callable, loss_for: Callable
) -> tuple[State, dict]:
    """One iteration: collect, build the batch (``batch_fn(config, env, state, rollout)``), update on the loss
    ``loss_for(state)`` (built from the state before the update), then fold the rollout into the observation
    statistics (after the update, so the first minibatch sees ratio 1 exactly)."""
    state, rollout, episode_stats = collect(config, env, state)
    batch = batch_fn(config, env, state, rollout)
    state, metrics = update(config, env, state, batch, loss_for(state))
    if config.normalize_observations:
        state = state.replace(obs_stats=update_stats(state.obs_stats, rollout.obs))
    state = state.replace(iteration=state.iteration + 1)
    return state, {**metrics, **episode_stats}


# ---------------------------------------------------------------- act


def act(
    config: PolicyGradientConfig, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Env actions for a batch of raw observations (mode of the policy when ``deterministic``); a recurrent
    policy treats each observation as an episode's first (:func:`act_step` threads its memory)."""
    if recurrent(config):
        num = common.batch_size(obs)
        return act_step(
            config, env, state, obs, jnp.ones((num,), bool), initial_memory(config, num), key, deterministic
        )[0]
    dist = policy_distribution(config, env, state.params, _prepare_obs(config, state.obs_stats, obs))
    raw_action = dist.mode() if deterministic else dist.sample(key)
    return dist.env_action(raw_action)


def act_step(
    config: PolicyGradientConfig,
    env: Env,
    state: State,
    obs: jax.Array,
    starts: jax.Array,
    memory: Memory,
    key: jax.Array,
    deterministic: bool = False,
) -> tuple[jax.Array, Memory]:
    """``(actions, next memory)`` for raw observations ``[B, ...]`` of envs whose memory is ``memory`` (from
    :func:`initial_memory`; zeroed where ``starts``): how evaluation runs a recurrent policy."""
    norm_obs = _prepare_obs(config, state.obs_stats, obs)
    carry, dist = step_policy(config, env, state.params, memory.policy, norm_obs, starts)
    raw_action = dist.mode() if deterministic else dist.sample(key)
    return dist.env_action(raw_action), memory.replace(policy=carry)


def value(config: PolicyGradientConfig, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """The value estimate ``V(obs)`` for a batch of raw observations (a recurrent network from zero memory)."""
    norm_obs = _prepare_obs(config, state.obs_stats, obs)
    if config.value.recurrent == "none":
        return value_estimate(config, env, state.params, norm_obs)
    starts = jnp.ones((1, common.batch_size(obs)), bool)
    carry = zero_carry(config.value, common.batch_size(obs))
    one_step = jax.tree.map(lambda x: x[None], norm_obs)
    return unrolled(_networks(config, env)[1], state.params.value, carry, one_step, starts)[1][0, ..., 0]
