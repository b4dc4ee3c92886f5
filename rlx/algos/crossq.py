"""CrossQ (Bhatt et al., ICLR 2024): SAC without target networks, made stable by batch renormalization in
the critic (and actor) and by one joint critic forward pass over the current and next batches.

A gradient step samples next actions from the actor (evaluation mode), runs the critic ensemble once in
training mode on ``concat([s, s'])`` and ``concat([a, a'])`` (so the batch statistics are those of both
distributions and are updated once), splits the outputs, and regresses the current half onto the soft TD
target built from the (stop-gradient) next half. Every ``policy_delay``-th step the actor is updated in
training mode against the critic in evaluation mode (running statistics), then the temperature. Adam
uses b1 = 0.5. Differences from the authors' code: the actor's log-std is squashed into [-5, 2] by tanh
(SAC's parametrization here) rather than clipped to [-20, 2]; any value representation can be the
critic's (``agent.critic.value``). After batch renorm's warm-up the layers fold ``r`` and ``d`` into the batch
statistics as the authors' code does (``renorm_correction: folded``, the default here since 2026-12-04);
``ioffe`` is the paper's formula. The CPU presets end inside the 100k-call warm-up, where both are plain batch
norm, and pin ``ioffe``, the form their results were recorded with (the two differ there only in round-off).
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
from rlx.nets import CriticNet, Model, PolicyNet
from rlx.ops import values
from rlx.ops.distributions import Gaussian

DESCRIPTION = "CrossQ: SAC without target networks, batch renorm and a joint forward pass of (s, a) and (s', a')"
ACTION_SPACES = ("box",)


# What the authors' actor and critic share: ReLU layers with batch renorm (its correction as their code computes
# it after warm-up) and flax's default init.
_AUTHORS_NETWORK = {
    "activation": "relu",
    "norm": "batch_renorm",
    "renorm_correction": "folded",
    "kernel_init": "lecun_normal",
}


@dataclasses.dataclass(frozen=True)
class Config(off_policy.TemperatureConfig, off_policy.OffPolicyConfig):
    """CrossQ hyperparameters; defaults are the authors' (critic 2 x 2048 and actor 2 x 256, both with batch
    renorm and flax's default lecun_normal init, Adam b1 0.5, learning rates 1e-3, policy delay 3, UTD 1)."""

    actor: PolicyNet = field(
        default_factory=lambda: PolicyNet(hidden=(256, 256), std="log_range", **_AUTHORS_NETWORK),
        doc="tanh-Gaussian policy network",
    )
    critic: CriticNet = field(
        default_factory=lambda: CriticNet(hidden=(2048, 2048), **_AUTHORS_NETWORK),
        doc="Q-network (batch renorm required) and its value representation",
    )
    num_critics: int = field(2, gt=0, doc="Q-networks; the target takes the lowest")
    policy_delay: int = field(3, gt=0, doc="critic steps per actor and temperature update")
    adam_b1: float = field(0.5, ge=0, lt=1, doc="Adam's first-moment decay (the paper's 0.5)")
    learning_starts: int = field(5_000, ge=0, doc="transitions collected before the first gradient step")
    actor_learning_rate: float = field(1e-3, traced=True, gt=0)
    critic_learning_rate: float = field(1e-3, traced=True, gt=0)
    alpha_learning_rate: float = field(1e-3, traced=True, gt=0, doc="the authors' code uses the actor's rate")

    PRIORITIZED_REPLAY: ClassVar[bool] = True  # as the actor-critics': weighted critic loss, larger member error
    PAL: ClassVar[bool] = True  # through critic_loss_and_error
    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "tau": "CrossQ has no target networks (the joint forward pass with batch renorm replaces them)",
    }

    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {
        "actor": ("params.actor", "net_state.actor", "opt_state.actor"),
        "critic": ("params.critic", "net_state.critic", "opt_state.critic"),
        "temperature": ("params.log_alpha", "opt_state.log_alpha"),
    }

    def check(self) -> None:
        super().check()
        common.check_network(self.actor, "agent.actor.", dropout=False, batch_renorm=True)
        common.check_network(self.critic, "agent.critic.", batch_renorm=True)
        if self.critic.norm != "batch_renorm":
            raise ConfigError(
                f"agent.critic.norm: CrossQ needs batch_renorm (without target networks the critic diverges "
                f"otherwise); got {self.critic.norm}"
            )
        off_policy.check_sac_actor(self.actor, "CrossQ")


@struct.dataclass
class Params:
    """One entry per learned part: parameters, optimizer states, or (``net_state``) batch statistics."""

    actor: Any
    critic: Any
    log_alpha: Any


@struct.dataclass
class State(off_policy.ActorCriticState):
    """SAC's state plus ``net_state``: the batch-renorm statistics of actor and critic (a :class:`Params`;
    ``log_alpha``: ``()``). ``params`` and ``opt_state`` are :class:`Params` too."""

    net_state: Params


steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[Model, Model, values.ValueRep]:
    return off_policy.stochastic_actor(config, env), *off_policy.critic(config, env)


def policy(config: Config, env: Env, state: State, obs: jax.Array) -> Gaussian:
    """The policy at (normalized) ``obs``, evaluation mode (running batch statistics)."""
    actor = _networks(config, env)[0]
    outputs = actor.apply(state.params.actor, obs, collections=state.net_state.actor)
    return nets.policy_distribution(config.actor, env.action_space, outputs)


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    actor_net, critic_net, _ = _networks(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs, action = common.dummy_obs(env), common.dummy_action(env)
    actor, actor_stats = actor_net.init(actor_key, obs)
    critic, critic_stats = critic_net.init(critic_key, obs, action)
    hparams = common.Hyperparams.from_config(config)
    params = Params(actor, critic, jnp.log(hparams.initial_alpha))
    tx = off_policy.optimizer(config, hparams, 1.0)
    opt_state = Params(
        tx.init(actor), tx.init(critic), off_policy.temperature_optimizer(config, 1.0).init(params.log_alpha)
    )
    return State(
        params=params,
        net_state=Params(actor_stats, critic_stats, ()),
        opt_state=opt_state,
        loop=off_policy.init_loop(config, env, env_key),
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
        hparams=hparams,
        total_iterations=off_policy.schedule_length(config, total_iterations),
    )


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """A critic update through the joint forward pass; every ``policy_delay``-th call also the actor and
    the temperature."""
    hp, params, net_state = state.hparams, state.params, state.net_state
    params = off_policy.with_fixed_temperature(config, hp, params)
    actor_net, critic_net, rep = _networks(config, env)
    alpha = jnp.exp(params.log_alpha)
    next_key, actor_key, critic_dropout, actor_dropout = jax.random.split(key, 4)

    next_dist = policy(config, env, state, batch.next_obs)
    next_raw = next_dist.sample(next_key)
    shift = -alpha * next_dist.log_prob(next_raw)
    both_obs = jnp.concatenate([batch.obs, batch.next_obs])
    both_actions = jnp.concatenate([batch.action, next_dist.env_action(next_raw)])

    def critic_objective(critic_params):
        out, stats = critic_net.apply_train(
            critic_params, critic_dropout, both_obs, both_actions, collections=net_state.critic
        )
        current, following = jnp.split(out, 2, axis=1)  # [critics, batch, outputs] each
        target = values.clipped_target(rep, jax.lax.stop_gradient(following), batch.returns, batch.discount, shift)
        loss, error = off_policy.critic_loss_and_error(config, state, batch, rep, current, target)
        return loss, (stats, rep.decode(current), error)

    (q_loss, (critic_stats, q, error)), grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    tx = off_policy.optimizer(config, hp, hp.critic_learning_rate)
    critic, critic_opt = common.optimizer_step(tx, grads, state.opt_state.critic, params.critic)

    def actor_objective(actor_params):
        out, stats = actor_net.apply_train(actor_params, actor_dropout, batch.obs, collections=net_state.actor)
        dist = nets.policy_distribution(config.actor, env.action_space, out)
        raw = dist.sample(actor_key)
        log_prob = dist.log_prob(raw)
        q_pi = critic_net.apply(critic, batch.obs, dist.env_action(raw), collections=critic_stats)
        return jnp.mean(alpha * log_prob - jnp.min(rep.decode(q_pi), axis=0)), (log_prob, stats)

    def update_actor_and_temperature(current):
        actor_params, actor_stats, log_alpha, actor_opt, alpha_opt = current
        (loss, (log_prob, actor_stats)), grads = jax.value_and_grad(actor_objective, has_aux=True)(actor_params)
        tx = off_policy.optimizer(config, hp, hp.actor_learning_rate)
        actor_params, actor_opt = common.optimizer_step(tx, grads, actor_opt, actor_params)
        log_alpha, alpha_opt, alpha_metrics = off_policy.temperature_step(
            config, env, hp, log_alpha, alpha_opt, log_prob
        )
        metrics = {"actor_loss": loss, **alpha_metrics, "entropy": -jnp.mean(log_prob)}
        return (actor_params, actor_stats, log_alpha, actor_opt, alpha_opt), metrics

    current = (params.actor, net_state.actor, params.log_alpha, state.opt_state.actor, state.opt_state.log_alpha)
    (actor, actor_stats, log_alpha, actor_opt, alpha_opt), actor_metrics = off_policy.delayed(
        config.policy_delay, state.num_updates, update_actor_and_temperature, current
    )
    metrics = {"critic_loss": q_loss, **actor_metrics, "alpha": alpha, "q_mean": jnp.mean(q)}
    new_state = state.replace(
        params=Params(actor, critic, log_alpha),
        net_state=Params(actor_stats, critic_stats, ()),
        opt_state=Params(actor_opt, critic_opt, alpha_opt),
        num_updates=state.num_updates + 1,
    )
    return off_policy.set_priorities(config, new_state, batch, error), metrics


def explore(config: Config, env: Env, state: State):
    """The behaviour policy: a sample of the current policy (evaluation-mode batch statistics)."""
    return off_policy.sample_from(lambda obs: policy(config, env, state, obs))


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""
    return off_policy.train_iteration(config, env, state, explore(config, env, state), gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Env actions for raw observations: the squashed mean when ``deterministic``, else a sample."""
    dist = policy(config, env, state, off_policy.prepare_obs(config, state, obs))
    return dist.env_action(dist.mode() if deterministic else dist.sample(key))


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``min_k Q_k(obs, deterministic action)`` for raw observations (running batch statistics)."""
    _, critic_net, rep = _networks(config, env)
    action = act(config, env, state, obs, jax.random.PRNGKey(0), deterministic=True)
    out = critic_net.apply(
        state.params.critic, off_policy.prepare_obs(config, state, obs), action, collections=state.net_state.critic
    )
    return jnp.min(rep.decode(out), axis=0)
