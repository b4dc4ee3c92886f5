"""Proximal Policy Optimization (Schulman et al., 2017); A2C is the preset ``configs/a2c_*.yaml``.

One iteration (``train_step``) collects ``unroll_length`` steps from ``num_envs`` vmapped envs, computes
GAE(lambda) advantages that bootstrap on truncation and not on termination, then runs ``num_epochs``
passes of ``num_minibatches`` clipped-surrogate updates. Discrete actions use a categorical policy,
continuous ones a Gaussian squashed by tanh (or clipped) into [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.algos import common
from rlx.config import ConfigError, field
from rlx.envs import Env, EnvStep, training_env
from rlx.nets import MLP
from rlx.ops.distributions import Categorical, Gaussian
from rlx.ops.losses import clipped_surrogate_loss, normalize_advantages, squared_value_loss
from rlx.ops.normalization import RunningStats, init_stats, normalize, update_stats
from rlx.ops.returns import gae


@dataclasses.dataclass(frozen=True)
class Config:
    """PPO hyperparameters. ``traced`` ones live in the train state and can be vmapped over."""

    # Static: they fix shapes or the program.
    num_envs: int = field(16, gt=0, doc="parallel envs")
    unroll_length: int = field(128, gt=0, doc="env steps per env per iteration")
    num_minibatches: int = field(4, gt=0, doc="minibatches per epoch; must divide num_envs*unroll_length")
    num_epochs: int = field(4, gt=0, doc="passes over each rollout")
    policy_hidden: tuple[int, ...] = field((64, 64), gt=0, doc="policy MLP widths")
    value_hidden: tuple[int, ...] = field((64, 64), gt=0, doc="value MLP widths")
    activation: str = field("tanh", choices=("tanh", "relu", "swish", "elu"))
    action_squash: str = field("tanh", choices=("tanh", "clip"), doc="continuous actions into [-1, 1]")
    min_std: float = field(1e-3, gt=0, doc="floor of the Gaussian policy's std")
    normalize_observations: bool = field(True, doc="Welford running mean/std of observations")
    normalize_advantages: bool = field(True, doc="per minibatch")
    lr_schedule: str = field("constant", choices=("constant", "linear"), doc="linear: anneal to 0")
    adam_eps: float = field(1e-5, gt=0)
    # Traced: shape-free, vmappable.
    learning_rate: float = field(3e-4, traced=True, gt=0)
    gamma: float = field(0.99, traced=True, ge=0, le=1, doc="discount")
    gae_lambda: float = field(0.95, traced=True, ge=0, le=1)
    clip_epsilon: float = field(0.2, traced=True, gt=0, doc="ratio clip range")
    value_coef: float = field(0.5, traced=True, ge=0)
    entropy_coef: float = field(0.01, traced=True, ge=0)
    max_grad_norm: float = field(0.5, traced=True, gt=0, doc="global gradient-norm clip")
    reward_scaling: float = field(1.0, traced=True, gt=0, doc="rewards are multiplied by this")

    def check(self) -> None:
        batch = self.num_envs * self.unroll_length
        if batch % self.num_minibatches:
            raise ConfigError(
                f"agent.num_minibatches: must divide num_envs*unroll_length = {batch}; got {self.num_minibatches}"
            )


class Hyperparams(common.Hyperparams):
    """The traced fields of :class:`Config`, as float32 arrays."""

    learning_rate: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_epsilon: jax.Array
    value_coef: jax.Array
    entropy_coef: jax.Array
    max_grad_norm: jax.Array
    reward_scaling: jax.Array


@struct.dataclass
class Params:
    policy: Any
    value: Any


@struct.dataclass
class State:
    """Everything a PPO run needs to continue bit for bit."""

    params: Params
    opt_state: Any
    env_step: EnvStep  # [num_envs] current envs, after auto-reset
    obs_stats: RunningStats
    key: jax.Array
    iteration: jax.Array  # int32, completed iterations
    total_iterations: jax.Array  # int32, length of the run (for the lr schedule)
    hparams: Hyperparams


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


def supports(env: Env) -> str | None:
    """None if PPO can train on ``env``, else why not."""
    if env.action_space.kind not in ("discrete", "box"):
        return f"PPO needs a discrete or box action space, got {env.action_space.kind}"
    return None


def steps_per_iteration(config: Config) -> int:
    """Agent steps collected per ``train_step``."""
    return config.num_envs * config.unroll_length


# ---------------------------------------------------------------- networks


def _networks(config: Config, env: Env) -> tuple[nn.Module, nn.Module]:
    space = env.action_space
    policy_out = space.n if space.kind == "discrete" else 2 * space.shape[0]
    obs_ndim = len(env.observation_shape)
    policy = MLP(config.policy_hidden, policy_out, config.activation, obs_ndim, output_scale=0.01)
    value = MLP(config.value_hidden, 1, config.activation, obs_ndim, output_scale=1.0)
    return policy, value


def _prepare_obs(config: Config, obs_stats: RunningStats, obs: jax.Array) -> jax.Array:
    return normalize(obs_stats, obs) if config.normalize_observations else obs


def policy_distribution(config: Config, env: Env, policy_params: Any, obs: jax.Array):
    """The policy's action distribution for (already normalized) ``obs``."""
    out = _networks(config, env)[0].apply(policy_params, obs)
    if env.action_space.kind == "discrete":
        return Categorical(out)
    mean, std_logit = jnp.split(out, 2, axis=-1)
    return Gaussian(mean, jax.nn.softplus(std_logit) + config.min_std, squash=config.action_squash)


def value_estimate(config: Config, env: Env, value_params: Any, obs: jax.Array) -> jax.Array:
    return _networks(config, env)[1].apply(value_params, obs)[..., 0]


def _optimizer(config: Config, hparams: Hyperparams, learning_rate: jax.Array) -> optax.GradientTransformation:
    # Built inside the traced update so that max_grad_norm and the learning rate are traced.
    return optax.chain(
        optax.clip_by_global_norm(hparams.max_grad_norm),
        optax.scale_by_adam(eps=config.adam_eps),
        optax.scale(-learning_rate),
    )


# ---------------------------------------------------------------- init


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    """Fresh train state; ``total_iterations`` sets the learning-rate schedule's length."""
    policy_net, value_net = _networks(config, env)
    key, policy_key, value_key, env_key = jax.random.split(key, 4)
    dummy_obs = jnp.zeros((1, *env.observation_shape), jnp.float32)
    params = Params(policy_net.init(policy_key, dummy_obs), value_net.init(value_key, dummy_obs))
    hparams = Hyperparams.from_config(config)
    opt_state = _optimizer(config, hparams, hparams.learning_rate).init(params)
    env_step = training_env(env, config.num_envs).reset(env_key)
    return State(
        params=params,
        opt_state=opt_state,
        env_step=env_step,
        obs_stats=update_stats(init_stats(env.observation_shape), env_step.obs),
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        total_iterations=jnp.asarray(total_iterations, jnp.int32),
        hparams=hparams,
    )


# ---------------------------------------------------------------- collect


def collect(config: Config, env: Env, state: State) -> tuple[State, Rollout, dict]:
    """Runs the current policy for ``unroll_length`` steps in every env."""
    vec_env = training_env(env, config.num_envs)

    def one_step(carry, _):
        env_step, key, returns_sum, lengths_sum, episodes = carry
        key, action_key = jax.random.split(key)
        obs = _prepare_obs(config, state.obs_stats, env_step.obs)
        dist = policy_distribution(config, env, state.params.policy, obs)
        raw_action = dist.sample(action_key)
        nxt = vec_env.step(env_step, dist.env_action(raw_action))
        done = nxt.done
        transition = Rollout(
            obs=env_step.obs,
            raw_action=raw_action,
            log_prob=dist.log_prob(raw_action),
            reward=nxt.reward,
            terminated=nxt.terminated,
            truncated=nxt.truncated,
            next_obs=nxt.info["final_obs"],
        )
        returns_sum += jnp.sum(jnp.where(done, nxt.info["episode_return"], 0.0))
        lengths_sum += jnp.sum(jnp.where(done, nxt.info["episode_length"], 0)).astype(jnp.float32)
        episodes += jnp.sum(done).astype(jnp.float32)
        return (nxt, key, returns_sum, lengths_sum, episodes), transition

    zero = jnp.zeros((), jnp.float32)
    init_carry = (state.env_step, state.key, zero, zero, zero)
    (env_step, key, returns_sum, lengths_sum, episodes), rollout = jax.lax.scan(
        one_step, init_carry, None, length=config.unroll_length
    )
    stats = {"episode_return_sum": returns_sum, "episode_length_sum": lengths_sum, "episode_count": episodes}
    return state.replace(env_step=env_step, key=key), rollout, stats


# ---------------------------------------------------------------- update


@struct.dataclass
class Batch:
    """Flat ``[batch, ...]`` samples for the loss."""

    obs: jax.Array  # normalized
    raw_action: jax.Array
    log_prob: jax.Array
    advantages: jax.Array
    targets: jax.Array


def loss_fn(
    params: Params, config: Config, env: Env, hparams: Hyperparams, batch: Batch, key: jax.Array
) -> tuple[jax.Array, dict]:
    """Clipped surrogate + ``value_coef`` * value loss - ``entropy_coef`` * entropy."""
    dist = policy_distribution(config, env, params.policy, batch.obs)
    advantages = batch.advantages
    if config.normalize_advantages:
        advantages = normalize_advantages(advantages)
    log_prob = dist.log_prob(batch.raw_action)
    policy_loss, ratio = clipped_surrogate_loss(log_prob, batch.log_prob, advantages, hparams.clip_epsilon)
    value_loss = squared_value_loss(value_estimate(config, env, params.value, batch.obs), batch.targets)
    entropy = jnp.mean(dist.entropy(key))
    loss = policy_loss + hparams.value_coef * value_loss - hparams.entropy_coef * entropy
    metrics = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - jnp.log(ratio)),
        "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > hparams.clip_epsilon),
    }
    return loss, metrics


def make_batch(config: Config, env: Env, state: State, rollout: Rollout) -> Batch:
    """Advantages and value targets (GAE) for a rollout, flattened over time and envs."""
    hp = state.hparams
    obs = _prepare_obs(config, state.obs_stats, rollout.obs)
    next_obs = _prepare_obs(config, state.obs_stats, rollout.next_obs)
    values = value_estimate(config, env, state.params.value, obs)
    next_values = value_estimate(config, env, state.params.value, next_obs)
    advantages, targets = gae(
        rollout.reward * hp.reward_scaling,
        values,
        next_values,
        rollout.terminated,
        rollout.truncated,
        hp.gamma,
        hp.gae_lambda,
    )
    batch = Batch(obs, rollout.raw_action, rollout.log_prob, advantages, targets)
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


def update(config: Config, env: Env, state: State, batch: Batch) -> tuple[State, dict]:
    """``num_epochs`` x ``num_minibatches`` gradient steps on ``batch``."""
    hp = state.hparams
    progress = state.iteration.astype(jnp.float32) / jnp.maximum(state.total_iterations, 1)
    learning_rate = hp.learning_rate * (1.0 - progress if config.lr_schedule == "linear" else 1.0)
    optimizer = _optimizer(config, hp, learning_rate)
    grad_fn = jax.grad(loss_fn, has_aux=True)

    def minibatch_step(carry, minibatch):
        params, opt_state, key = carry
        key, loss_key = jax.random.split(key)
        grads, metrics = grad_fn(params, config, env, hp, minibatch, loss_key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics["grad_norm"] = optax.global_norm(grads)
        return (optax.apply_updates(params, updates), opt_state, key), metrics

    def epoch(carry, _):
        params, opt_state, key = carry
        key, perm_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, batch.obs.shape[0])
        minibatches = jax.tree.map(
            lambda x: x[order].reshape((config.num_minibatches, -1, *x.shape[1:])), batch
        )
        return jax.lax.scan(minibatch_step, (params, opt_state, key), minibatches)

    (params, opt_state, key), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state, state.key), None, length=config.num_epochs
    )
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["learning_rate"] = learning_rate
    return state.replace(params=params, opt_state=opt_state, key=key), metrics


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect, compute advantages, update, then fold the rollout into the
    observation statistics (after the update, so the first minibatch sees ratio 1 exactly)."""
    state, rollout, episode_stats = collect(config, env, state)
    batch = make_batch(config, env, state, rollout)
    state, metrics = update(config, env, state, batch)
    if config.normalize_observations:
        state = state.replace(obs_stats=update_stats(state.obs_stats, rollout.obs))
    state = state.replace(iteration=state.iteration + 1)
    return state, {**metrics, **episode_stats}


# ---------------------------------------------------------------- act


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Env actions for a batch of raw observations (mode of the policy when ``deterministic``)."""
    dist = policy_distribution(config, env, state.params.policy, _prepare_obs(config, state.obs_stats, obs))
    raw_action = dist.mode() if deterministic else dist.sample(key)
    return dist.env_action(raw_action)
