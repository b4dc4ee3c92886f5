"""TD3 (Fujimoto et al., 2018); DDPG is the preset ``configs/ddpg_*.yaml`` (one critic, no target
smoothing, no delay).

A deterministic tanh actor explores with clipped Gaussian noise. Each gradient step updates the
critics toward the clipped double-Q target at a smoothed target action; every ``policy_delay``-th
step also updates the actor (maximizing the first critic) and Polyak-averages both targets.
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
from rlx.ops.normalization import RunningStats
from rlx.ops.td import clipped_double_q_target, critic_loss, polyak_update, smoothed_target_action


@dataclasses.dataclass(frozen=True)
class Config(off_policy.ActorCriticConfig):
    """TD3 hyperparameters (the shared off-policy fields plus TD3's)."""

    num_critics: int = field(2, gt=0, doc="2: clipped double Q (TD3); 1: DDPG")
    policy_delay: int = field(2, gt=0, doc="critic steps per actor and target update")
    exploration_noise: float = field(0.1, traced=True, ge=0, doc="std of the Gaussian action noise")
    policy_noise: float = field(0.2, traced=True, ge=0, doc="std of target-policy smoothing noise (0: none)")
    noise_clip: float = field(0.5, traced=True, ge=0, doc="target-policy noise is clipped to +-noise_clip")


class Hyperparams(common.Hyperparams):
    """The traced fields of :class:`Config`, as float32 arrays."""

    gamma: jax.Array
    reward_scaling: jax.Array
    tau: jax.Array
    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    exploration_noise: jax.Array
    policy_noise: jax.Array
    noise_clip: jax.Array


@struct.dataclass
class Params:
    actor: Any
    critic: Any
    target_actor: Any
    target_critic: Any


@struct.dataclass
class OptStates:
    actor: Any
    critic: Any


@struct.dataclass
class State:
    """Everything a TD3 run needs to continue bit for bit, replay buffer included."""

    params: Params
    opt_state: OptStates
    env_step: EnvStep
    buffer: Any
    obs_stats: RunningStats
    key: jax.Array
    iteration: jax.Array
    num_updates: jax.Array  # int32, critic steps taken (for the policy delay)
    hparams: Hyperparams


def supports(env: Env) -> str | None:
    if env.action_space.kind != "box":
        return f"TD3/DDPG need continuous (box) actions, got {env.action_space.kind}"
    return None


steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[nn.Module, nn.Module]:
    obs_ndim = len(env.observation_shape)
    actor = MLP(config.actor_hidden, env.action_space.shape[0], config.activation, obs_ndim)
    critic = QEnsemble(config.critic_hidden, config.num_critics, config.activation, obs_ndim)
    return actor, critic


def policy(config: Config, env: Env, actor_params: Any, obs: jax.Array) -> jax.Array:
    """Deterministic action in [-1, 1]."""
    return jnp.tanh(_networks(config, env)[0].apply(actor_params, obs))


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    del total_iterations  # constant learning rates
    actor_net, critic_net = _networks(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs = jnp.zeros((1, *env.observation_shape), jnp.float32)
    actor = actor_net.init(actor_key, obs)
    critic = critic_net.init(critic_key, obs, jnp.zeros((1, *env.action_space.shape), jnp.float32))
    opt_state = OptStates(optax.adam(1.0).init(actor), optax.adam(1.0).init(critic))
    return State(params=Params(actor, critic, actor, critic), opt_state=opt_state, key=key,
                 iteration=jnp.zeros((), jnp.int32), num_updates=jnp.zeros((), jnp.int32),
                 hparams=Hyperparams.from_config(config), **off_policy.init_loop(config, env, env_key))


def gradient_step(config: Config, env: Env, state: State, batch: Transition, key: jax.Array) -> tuple[State, dict]:
    """A critic update; every ``policy_delay``-th call also the actor and Polyak target updates."""
    hp, params = state.hparams, state.params
    critic_net = _networks(config, env)[1]

    next_action = smoothed_target_action(
        policy(config, env, params.target_actor, batch.next_obs), key, hp.policy_noise, hp.noise_clip
    )
    next_q = critic_net.apply(params.target_critic, batch.next_obs, next_action)
    target = clipped_double_q_target(batch.reward * hp.reward_scaling, batch.terminated, next_q, hp.gamma)

    def critic_objective(critic_params):
        q = critic_net.apply(critic_params, batch.obs, batch.action)
        return critic_loss(q, target), q

    (q_loss, q), grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    critic, critic_opt = common.adam_step(grads, state.opt_state.critic, params.critic, hp.critic_learning_rate)

    def actor_objective(actor_params):
        return -jnp.mean(critic_net.apply(critic, batch.obs, policy(config, env, actor_params, batch.obs))[0])

    def update_actor_and_targets(_):
        actor_loss, grads = jax.value_and_grad(actor_objective)(params.actor)
        actor, actor_opt = common.adam_step(grads, state.opt_state.actor, params.actor, hp.actor_learning_rate)
        targets = (polyak_update(params.target_actor, actor, hp.tau), polyak_update(params.target_critic, critic, hp.tau))
        return actor, actor_opt, targets, actor_loss

    def keep(_):
        targets = (params.target_actor, params.target_critic)
        return params.actor, state.opt_state.actor, targets, jnp.zeros((), jnp.float32)

    due = (state.num_updates + 1) % config.policy_delay == 0
    actor, actor_opt, (target_actor, target_critic), actor_loss = jax.lax.cond(due, update_actor_and_targets, keep, None)
    metrics = {"critic_loss": q_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(q)}
    return state.replace(
        params=Params(actor, critic, target_actor, target_critic),
        opt_state=OptStates(actor_opt, critic_opt),
        num_updates=state.num_updates + 1,
    ), metrics


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect with exploration noise into the buffer, then the gradient steps."""

    def explore(obs, key):
        action = policy(config, env, state.params.actor, obs)
        noise = state.hparams.exploration_noise * jax.random.normal(key, action.shape)
        return jnp.clip(action + noise, -1.0, 1.0)

    return off_policy.train_iteration(config, env, state, explore, gradient_step)


def act(config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
    """The deterministic policy (TD3 evaluates and acts greedily; exploration noise is added in training)."""
    del key, deterministic
    return policy(config, env, state.params.actor, off_policy.prepare_obs(config, state.obs_stats, obs))
