"""Soft Actor-Critic (Haarnoja et al., 2018) with twin Q-networks and automatic temperature.

Each iteration collects ``num_envs * rollout_length`` transitions into the replay buffer, then takes
``utd_ratio`` gradient steps per transition (see ``rlx.algos.off_policy``). A gradient step updates the
twin critics toward the soft TD target from Polyak-averaged target critics, the tanh-squashed
Gaussian actor by the reparameterized ``alpha log pi - min Q``, and ``log alpha`` toward the target
entropy ``-|A|`` (or keeps ``alpha`` fixed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.algos import common, off_policy
from rlx.buffers import Transition
from rlx.config import field
from rlx.envs import Env, EnvStep
from rlx.nets import MLP, QEnsemble
from rlx.ops.distributions import Gaussian
from rlx.ops.normalization import RunningStats
from rlx.ops.td import critic_loss, polyak_update, soft_td_target, temperature_loss

LOG_STD_RANGE = (-5.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Config(off_policy.ActorCriticConfig):
    """SAC hyperparameters (the shared off-policy fields plus the temperature's)."""

    num_critics: int = field(2, gt=0, doc="Q-networks; the target takes their minimum")
    autotune_alpha: bool = field(True, doc="learn alpha toward target_entropy; else keep initial_alpha")
    target_entropy: float | None = field(None, doc="default -|A|")
    initial_alpha: float = field(1.0, traced=True, gt=0, doc="temperature at the start (fixed if not autotuned)")
    alpha_learning_rate: float = field(3e-4, traced=True, gt=0)


class Hyperparams(common.Hyperparams):
    """The traced fields of :class:`Config`, as float32 arrays."""

    gamma: jax.Array
    reward_scaling: jax.Array
    tau: jax.Array
    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    initial_alpha: jax.Array
    alpha_learning_rate: jax.Array


@struct.dataclass
class Params:
    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array


@struct.dataclass
class OptStates:
    actor: Any
    critic: Any
    alpha: Any


@struct.dataclass
class State:
    """Everything a SAC run needs to continue bit for bit, replay buffer included."""

    params: Params
    opt_state: OptStates
    env_step: EnvStep
    buffer: Any
    obs_stats: RunningStats
    key: jax.Array
    iteration: jax.Array
    hparams: Hyperparams


def supports(env: Env) -> str | None:
    if env.action_space.kind != "box":
        return f"SAC needs continuous (box) actions, got {env.action_space.kind}"
    return None


steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[nn.Module, nn.Module]:
    obs_ndim = len(env.observation_shape)
    actor = MLP(config.actor_hidden, 2 * env.action_space.shape[0], config.activation, obs_ndim)
    critic = QEnsemble(config.critic_hidden, config.num_critics, config.activation, obs_ndim)
    return actor, critic


def policy(config: Config, env: Env, actor_params: Any, obs: jax.Array) -> Gaussian:
    """Tanh-squashed Gaussian with log-std squashed into ``LOG_STD_RANGE``."""
    mean, raw_log_std = jnp.split(_networks(config, env)[0].apply(actor_params, obs), 2, axis=-1)
    low, high = LOG_STD_RANGE
    log_std = low + 0.5 * (high - low) * (jnp.tanh(raw_log_std) + 1.0)
    return Gaussian(mean, jnp.exp(log_std), squash="tanh")


def _target_entropy(config: Config, env: Env) -> float:
    return -float(env.action_space.shape[0]) if config.target_entropy is None else config.target_entropy


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    del total_iterations  # constant learning rates
    actor_net, critic_net = _networks(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs = jnp.zeros((1, *env.observation_shape), jnp.float32)
    action = jnp.zeros((1, *env.action_space.shape), jnp.float32)
    critic = critic_net.init(critic_key, obs, action)
    hparams = Hyperparams.from_config(config)
    params = Params(actor_net.init(actor_key, obs), critic, critic, jnp.log(hparams.initial_alpha))
    opt_state = OptStates(optax.adam(1.0).init(params.actor), optax.adam(1.0).init(critic), optax.adam(1.0).init(params.log_alpha))
    return State(params=params, opt_state=opt_state, key=key, iteration=jnp.zeros((), jnp.int32), hparams=hparams,
                 **off_policy.init_loop(config, env, env_key))


def gradient_step(config: Config, env: Env, state: State, batch: Transition, key: jax.Array) -> tuple[State, dict]:
    """One critic, actor and temperature update on ``batch``, then the Polyak target update."""
    hp, params = state.hparams, state.params
    critic_net = _networks(config, env)[1]
    alpha = jnp.exp(params.log_alpha)
    next_key, actor_key = jax.random.split(key)

    next_dist = policy(config, env, params.actor, batch.next_obs)
    next_raw = next_dist.sample(next_key)
    next_q = critic_net.apply(params.target_critic, batch.next_obs, next_dist.env_action(next_raw))
    target = soft_td_target(batch.reward * hp.reward_scaling, batch.terminated, next_q,
                            next_dist.log_prob(next_raw), alpha, hp.gamma)

    def critic_objective(critic_params):
        q = critic_net.apply(critic_params, batch.obs, batch.action)
        return critic_loss(q, target), q

    (q_loss, q), critic_grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    critic, critic_opt = common.adam_step(critic_grads, state.opt_state.critic, params.critic, hp.critic_learning_rate)

    def actor_objective(actor_params):
        dist = policy(config, env, actor_params, batch.obs)
        raw = dist.sample(actor_key)
        log_prob = dist.log_prob(raw)
        q_pi = jnp.min(critic_net.apply(critic, batch.obs, dist.env_action(raw)), axis=0)
        return jnp.mean(alpha * log_prob - q_pi), log_prob

    (actor_loss, log_prob), actor_grads = jax.value_and_grad(actor_objective, has_aux=True)(params.actor)
    actor, actor_opt = common.adam_step(actor_grads, state.opt_state.actor, params.actor, hp.actor_learning_rate)

    target_entropy = _target_entropy(config, env)
    alpha_loss, alpha_grad = jax.value_and_grad(temperature_loss)(params.log_alpha, log_prob, target_entropy)
    log_alpha, alpha_opt = params.log_alpha, state.opt_state.alpha
    if config.autotune_alpha:
        log_alpha, alpha_opt = common.adam_step(alpha_grad, alpha_opt, log_alpha, hp.alpha_learning_rate)

    new_params = Params(actor, critic, polyak_update(params.target_critic, critic, hp.tau), log_alpha)
    metrics = {"critic_loss": q_loss, "actor_loss": actor_loss, "alpha_loss": alpha_loss, "alpha": alpha,
               "q_mean": jnp.mean(q), "entropy": -jnp.mean(log_prob)}
    return state.replace(params=new_params, opt_state=OptStates(actor_opt, critic_opt, alpha_opt)), metrics


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""

    def explore(obs, key):
        dist = policy(config, env, state.params.actor, obs)
        return dist.env_action(dist.sample(key))

    return off_policy.train_iteration(config, env, state, explore, gradient_step)


def act(config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
    dist = policy(config, env, state.params.actor, off_policy.prepare_obs(config, state.obs_stats, obs))
    return dist.env_action(dist.mode() if deterministic else dist.sample(key))
