"""TD3 (Fujimoto et al., 2018); DDPG is the preset ``configs/ddpg_*.yaml`` (one critic, no target
smoothing, no delay).

A deterministic tanh actor explores with clipped Gaussian noise. Each gradient step updates the
critics toward the clipped double-Q target at a smoothed target action (``agent.critic.value`` picks the
representation: a C51 critic with many envs and n-step returns is FastTD3's recipe); every
``policy_delay``-th step also updates the actor (maximizing the first critic) and Polyak-averages both
targets. FastTD3's variant (``actor_q: min``, ``target_actor: false``, ``delay_targets: false``): the actor
maximizes the min of the critics, the smoothed target action comes from the online actor, and the target
critic follows the critic after every critic step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from rlx import nets
from rlx.algos import common, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import MLP, Model, Net
from rlx.nets.spec import network_input
from rlx.ops import values
from rlx.ops.td import polyak_update, smoothed_target_action
from rlx.rollout import PolicyStep

DESCRIPTION = "TD3: deterministic actor, clipped double Q with target smoothing, delayed updates (DDPG is a preset)"
ACTION_SPACES = ("box",)
DICT_OBSERVATIONS = True  # each network picks its entry (agent.actor.obs_key, agent.critic.obs_key)


@dataclasses.dataclass(frozen=True)
class Config(off_policy.ActorCriticConfig):
    """TD3 hyperparameters (the shared off-policy fields plus TD3's)."""

    actor: Net = field(
        default_factory=lambda: Net(hidden=(256, 256), activation="relu"), doc="deterministic policy network"
    )
    policy_delay: int = field(2, gt=0, doc="critic steps per actor and target update")
    exploration_noise: float = field(0.1, traced=True, ge=0, doc="std of the Gaussian action noise")
    exploration_noise_max: float | None = field(
        None,
        traced=True,
        gt=0,
        doc="if set, each env draws its noise std uniformly from [exploration_noise, this] at every episode "
        "start (FastTD3: 0.001 to 0.4)",
    )
    policy_noise: float = field(0.2, traced=True, ge=0, doc="std of target-policy smoothing noise (0: none)")
    noise_clip: float = field(0.5, traced=True, ge=0, doc="target-policy noise is clipped to +-noise_clip")
    actor_q: str = field(
        "first",
        choices=("first", "min", "mean"),
        doc="the actor maximizes the first critic (TD3), the min of the critics (FastTD3) or their mean",
    )
    target_actor: bool = field(
        True, doc="smoothed target actions from a Polyak target actor (TD3); false: from the online actor (FastTD3)"
    )
    delay_targets: bool = field(
        True, doc="Polyak target updates with the delayed actor steps (TD3); false: after every critic step (FastTD3)"
    )
    clip_stored_action: bool = field(
        True,
        doc="store the exploration action clipped to [-1, 1] (TD3); false: store action + noise unclipped, "
        "the env receiving it clipped (FastTD3's code)",
    )

    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {
        "actor": ("params.actor", "params.target_actor", "opt_state.actor"),
        "critic": ("params.critic", "params.target_critic", "opt_state.critic"),
    }

    def check(self) -> None:
        super().check()
        common.check_network(self.actor, "agent.actor.", dropout=False)
        common.check_network(self.critic, "agent.critic.")
        if self.exploration_noise_max is not None and self.exploration_noise_max < self.exploration_noise:
            raise ConfigError(
                f"agent.exploration_noise_max: must be >= agent.exploration_noise ({self.exploration_noise:g}); "
                f"got {self.exploration_noise_max:g}"
            )


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


State = off_policy.ActorCriticState  # params: Params, opt_state: OptStates

steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[Model, Model, values.ValueRep]:
    obs_ndim = len(network_input(config.actor, env.observation_shape))
    return Model(MLP(config.actor, env.action_space.shape, obs_ndim)), *off_policy.critic(config, env)


def policy(config: Config, env: Env, actor_params: Any, obs: jax.Array) -> jax.Array:
    """Deterministic action in [-1, 1] at (normalized) ``obs``."""
    return nets.deterministic_action(_networks(config, env)[0].apply(actor_params, obs))


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    actor_net, critic_net, _ = _networks(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    actor, _ = actor_net.init(actor_key, common.dummy_obs(env))
    critic, _ = critic_net.init(critic_key, common.dummy_obs(env), common.dummy_action(env))
    hparams = common.Hyperparams.from_config(config)
    tx = off_policy.optimizer(config, hparams, 1.0)
    noise_scales = ()  # per-env noise stds (FastTD3), the behaviour policy's carry
    if hparams.get("exploration_noise_max") is not None:
        key, scales_key = jax.random.split(key)
        noise_scales = draw_noise_scales(hparams, scales_key, config.num_envs)
    return State(
        params=Params(actor, critic, actor, critic),
        opt_state=OptStates(tx.init(actor), tx.init(critic)),
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
        hparams=hparams,
        loop=off_policy.init_loop(config, env, env_key, explore_carry=noise_scales),
        total_iterations=off_policy.schedule_length(config, total_iterations),
    )


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """A critic update; every ``policy_delay``-th call also the actor and Polyak target updates."""
    hp, params = state.hparams, state.params
    _, critic_net, rep = _networks(config, env)
    target_dropout, critic_dropout, actor_dropout = jax.random.split(jax.random.fold_in(key, 1), 3)

    next_actor = params.target_actor if config.target_actor else params.actor
    next_action = smoothed_target_action(
        policy(config, env, next_actor, batch.next_obs), key, hp.policy_noise, hp.noise_clip
    )
    next_out, _ = critic_net.apply_train(params.target_critic, target_dropout, batch.next_obs, next_action)
    target = values.clipped_target(rep, next_out, batch.returns, batch.discount)

    def critic_objective(critic_params):
        out, _ = critic_net.apply_train(critic_params, critic_dropout, batch.obs, batch.action)
        loss, error = off_policy.critic_loss_and_error(config, state, batch, rep, out, target)
        return loss, (rep.decode(out), error)

    (q_loss, (q, error)), grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    tx = off_policy.optimizer(config, hp, hp.critic_learning_rate)
    critic, critic_opt = common.optimizer_step(tx, grads, state.opt_state.critic, params.critic)

    def actor_objective(actor_params):
        out, _ = critic_net.apply_train(critic, actor_dropout, batch.obs, policy(config, env, actor_params, batch.obs))
        return -jnp.mean(off_policy.actor_value(rep.decode(out), config.actor_q))

    def targets_after(actor, targets):
        target_actor, target_critic = targets
        if config.target_actor:
            target_actor = polyak_update(target_actor, actor, hp.tau)
        return target_actor, polyak_update(target_critic, critic, hp.tau)

    def update_actor_and_targets(current):
        actor, actor_opt, targets = current
        actor_loss, grads = jax.value_and_grad(actor_objective)(actor)
        tx = off_policy.optimizer(config, hp, hp.actor_learning_rate)
        actor, actor_opt = common.optimizer_step(tx, grads, actor_opt, actor)
        if config.delay_targets:
            targets = targets_after(actor, targets)
        return (actor, actor_opt, targets), {"actor_loss": actor_loss}

    current = (params.actor, state.opt_state.actor, (params.target_actor, params.target_critic))
    (actor, actor_opt, targets), actor_metrics = off_policy.delayed(
        config.policy_delay, state.num_updates, update_actor_and_targets, current
    )
    target_actor, target_critic = targets if config.delay_targets else targets_after(actor, targets)
    metrics = {"critic_loss": q_loss, **actor_metrics, "q_mean": jnp.mean(q)}
    new_state = state.replace(
        params=Params(actor, critic, target_actor, target_critic),
        opt_state=OptStates(actor_opt, critic_opt),
        num_updates=state.num_updates + 1,
    )
    return off_policy.set_priorities(config, new_state, batch, error), metrics


def draw_noise_scales(hparams: common.Hyperparams, key: jax.Array, num: int) -> jax.Array:
    """``[num]`` noise stds, uniform in ``[exploration_noise, exploration_noise_max]``."""
    low, high = hparams.exploration_noise, hparams.exploration_noise_max
    return jax.random.uniform(key, (num,), minval=low, maxval=high)


def explore(config: Config, env: Env, state: State):
    """The behaviour policy: the deterministic action plus Gaussian noise (one std for all envs, or each
    env's own, redrawn where an episode starts), clipped to the action bounds unless ``clip_stored_action``
    is false (the off-policy loop clips what the envs receive either way)."""

    def noisy(obs, starts, carry, key):
        action = policy(config, env, state.params.actor, obs)
        if state.hparams.get("exploration_noise_max") is None:
            std = state.hparams.exploration_noise
        else:
            key, scales_key = jax.random.split(key)
            carry = jnp.where(starts, draw_noise_scales(state.hparams, scales_key, starts.shape[0]), carry)
            std = carry[:, None]
        noise = std * jax.random.normal(key, action.shape)
        action = action + noise
        return PolicyStep(off_policy.clip_unit_box(action) if config.clip_stored_action else action, {}, carry)

    return noisy


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect with exploration noise into the buffer, then the gradient steps."""
    return off_policy.train_iteration(config, env, state, explore(config, env, state), gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """The deterministic policy (TD3 evaluates and acts greedily; exploration noise is added in training)."""
    del key, deterministic
    return policy(config, env, state.params.actor, off_policy.prepare_obs(config, state, obs))


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """The value the actor maximizes (``actor_q`` of the critics at ``policy(obs)``) for raw observations."""
    norm_obs = off_policy.prepare_obs(config, state, obs)
    _, critic_net, rep = _networks(config, env)
    action = policy(config, env, state.params.actor, norm_obs)
    return off_policy.actor_value(rep.decode(critic_net.apply(state.params.critic, norm_obs, action)), config.actor_q)
