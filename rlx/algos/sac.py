"""Soft Actor-Critic (Haarnoja et al., 2018) with an ensemble of Q-networks and automatic temperature.

Each iteration collects ``num_envs * rollout_length`` transitions into the replay buffer, then takes
``utd_ratio`` gradient steps per transition (see ``rlx.algos.off_policy``). A gradient step updates the
critics toward the soft TD target ``returns + discount * (Q'(s', a') - alpha log pi(a'|s'))`` of the lowest
Polyak-averaged target critic (``agent.critic.value`` picks the representation: scalar, HL-Gauss, C51,
quantile), the tanh-squashed Gaussian actor by the reparameterized ``alpha log pi - min_k Q_k``, and
``log alpha`` toward the target entropy ``-|A|`` (or keeps ``alpha`` fixed). With ``agent.actor.distribution:
bernoulli`` the actor is bang-bang (Seyde et al. 2021: each dimension a Bernoulli over -1 and +1): its loss
uses the analytic entropy in place of ``-log pi`` and the critics' exact expectation over all ``2^|A|`` extreme
actions (``bang_bang_gradient: exact``; ``straight_through`` backpropagates through one straight-through sample
instead, ``off_policy.actor_sample``: cheaper, biased for critics non-linear in the action, and on
inverted_pendulum it learned 2 of 5 seeds where exact learned 5 of 5); the target entropy must be set per
dimension in (0, log 2). Critic dropout is on in
every critic pass of a gradient step. DroQ (Hiraoka et al. 2022) is a preset: dropout + LayerNorm critics,
20 gradient steps per transition, the actor and temperature updated every 20th step
(``policy_delay``) against the mean of the critics (``actor_q: mean``), as in the authors' code.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from rlx import nets
from rlx.algos import common, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import Model, PolicyNet
from rlx.ops import values
from rlx.ops.distributions import Bernoulli, Gaussian
from rlx.ops.td import polyak_update

DESCRIPTION = "SAC: tanh-Gaussian or bang-bang actor, clipped ensemble of Q critics (any value rep), auto temperature"
ACTION_SPACES = ("box",)
DICT_OBSERVATIONS = True  # each network picks its entry (agent.actor.obs_key, agent.critic.obs_key)
MAX_EXACT_BANG_BANG_DIMS = 10  # bang_bang_gradient exact: 2^10 critic passes per sample


@dataclasses.dataclass(frozen=True)
class Config(off_policy.TemperatureConfig, off_policy.ActorCriticConfig):
    """SAC hyperparameters (the shared off-policy fields plus the temperature's)."""

    actor: PolicyNet = field(
        default_factory=lambda: PolicyNet(hidden=(256, 256), activation="relu", std="log_range"),
        doc="tanh-Gaussian policy network (or distribution: bernoulli, bang-bang)",
    )
    policy_delay: int = field(1, gt=0, doc="critic steps per actor and temperature update (DroQ: 20)")
    actor_q: str = field(
        "min", choices=("min", "mean"), doc="the actor maximizes the min (SAC) or the mean (REDQ, DroQ) of the critics"
    )
    bang_bang_gradient: str = field(
        "exact",
        choices=("exact", "straight_through"),
        doc="distribution bernoulli: the actor's Q as its exact expectation over all 2^|A| extreme actions "
        "(|A| <= 10), or through one straight-through sample",
        read_with={"actor.distribution": ("bernoulli",)},
    )

    NAME: ClassVar[str] = "SAC"  # in error messages
    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {
        "actor": ("params.actor", "opt_state.actor"),
        "critic": ("params.critic", "params.target_critic", "opt_state.critic"),
        "temperature": ("params.log_alpha", "opt_state.alpha"),
    }

    def check(self) -> None:
        super().check()
        common.check_network(self.actor, "agent.actor.", dropout=False)
        common.check_network(self.critic, "agent.critic.")
        off_policy.check_sac_actor(self.actor, self.NAME, bernoulli=True)
        if self.actor.distribution == "bernoulli" and self.autotune_alpha:
            check_bernoulli_target_entropy(self)
        if self.bang_bang_gradient == "straight_through" and self.actor.distribution != "bernoulli":
            raise ConfigError(
                "agent.bang_bang_gradient: straight_through needs agent.actor.distribution bernoulli; "
                f"got {self.actor.distribution}"
            )


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


State = off_policy.ActorCriticState  # params: Params, opt_state: OptStates

steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[Model, Model, values.ValueRep]:
    return off_policy.stochastic_actor(config, env), *off_policy.critic(config, env)


def check_bernoulli_target_entropy(config: Config) -> None:
    """One line unless a Bernoulli actor's target entropy is reachable: a Bernoulli's entropy per dimension lies
    in [0, log 2], so the Gaussian default of -1 per dimension would drive alpha to zero."""
    if config.target_entropy is not None:
        if config.target_entropy <= 0:
            raise ConfigError(f"agent.target_entropy: a Bernoulli actor needs > 0; got {config.target_entropy}")
    elif not 0 < config.target_entropy_per_dim < math.log(2.0):
        raise ConfigError(
            "agent.target_entropy_per_dim: a Bernoulli actor needs a value in (0, log 2 = 0.693); "
            f"got {config.target_entropy_per_dim}"
        )


def policy(config: Config, env: Env, actor_params: Any, obs: jax.Array) -> Gaussian | Bernoulli:
    """The policy at (normalized) ``obs``: tanh-squashed Gaussian, or Bernoulli on {-1, 1} per dimension."""
    return nets.policy_distribution(config.actor, env.action_space, _networks(config, env)[0].apply(actor_params, obs))


def exact_bang_bang(config: Config) -> bool:
    """Whether the actor's Q is the exact expectation of a bang-bang actor over all 2^|A| extreme actions."""
    return config.actor.distribution == "bernoulli" and config.bang_bang_gradient == "exact"


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    if exact_bang_bang(config) and env.action_space.shape[0] > MAX_EXACT_BANG_BANG_DIMS:
        raise ConfigError(
            f"agent.bang_bang_gradient: exact sums over 2^|A| actions, so needs |A| <= "
            f"{MAX_EXACT_BANG_BANG_DIMS} (else straight_through); this env has {env.action_space.shape[0]}"
        )
    actor_net, critic_net, _ = _networks(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs, action = common.dummy_obs(env), common.dummy_action(env)
    critic, _ = critic_net.init(critic_key, obs, action)
    hparams = common.Hyperparams.from_config(config)
    params = Params(actor_net.init(actor_key, obs)[0], critic, critic, jnp.log(hparams.initial_alpha))
    tx = off_policy.optimizer(config, hparams, 1.0)
    opt_state = OptStates(
        tx.init(params.actor), tx.init(critic), off_policy.temperature_optimizer(config, 1.0).init(params.log_alpha)
    )
    return State(
        params=params,
        opt_state=opt_state,
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
        hparams=hparams,
        loop=off_policy.init_loop(config, env, env_key),
        total_iterations=off_policy.schedule_length(config, total_iterations),
    )


def gradient_step(
    config: Config,
    env: Env,
    state: State,
    batch: off_policy.Batch,
    key: jax.Array,
    actor_penalty: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None,
) -> tuple[State, dict]:
    """A critic update on ``batch`` and the Polyak target update; every ``policy_delay``-th call (every call
    by default) also the actor and the temperature, against the just-updated critics. ``actor_penalty(obs,
    raw_action, log_prob) -> [batch]`` is added to the actor's per-sample loss (off-policy MDPO's KL term)."""
    hp, params = state.hparams, state.params
    params = off_policy.with_fixed_temperature(config, hp, params)
    _, critic_net, rep = _networks(config, env)
    alpha = jnp.exp(params.log_alpha)
    next_key, actor_key = jax.random.split(key)
    target_dropout, critic_dropout, actor_dropout = jax.random.split(jax.random.fold_in(key, 1), 3)

    next_dist = policy(config, env, params.actor, batch.next_obs)
    next_raw = next_dist.sample(next_key)
    next_out, _ = critic_net.apply_train(
        params.target_critic, target_dropout, batch.next_obs, next_dist.env_action(next_raw)
    )
    target = values.clipped_target(
        rep, next_out, batch.returns, batch.discount, shift=-alpha * next_dist.log_prob(next_raw)
    )

    def critic_objective(critic_params):
        out, _ = critic_net.apply_train(critic_params, critic_dropout, batch.obs, batch.action)
        loss, error = off_policy.critic_loss_and_error(config, state, batch, rep, out, target)
        return loss, (rep.decode(out), error)

    (q_loss, (q, error)), critic_grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    critic_tx = off_policy.optimizer(config, hp, hp.critic_learning_rate)
    critic, critic_opt = common.optimizer_step(critic_tx, critic_grads, state.opt_state.critic, params.critic)

    def actor_q(action):
        out, _ = critic_net.apply_train(critic, actor_dropout, batch.obs, action)
        return off_policy.actor_value(rep.decode(out), config.actor_q)

    def actor_objective(actor_params):
        dist = policy(config, env, actor_params, batch.obs)
        if exact_bang_bang(config):
            raw, log_prob = None, -dist.entropy()
            q_pi = dist.expectation(actor_q)
        else:
            raw, log_prob = off_policy.actor_sample(dist, actor_key)
            q_pi = actor_q(dist.env_action(raw))
        if actor_penalty is None:
            return jnp.mean(alpha * log_prob - q_pi), log_prob
        return jnp.mean(alpha * log_prob - q_pi + actor_penalty(batch.obs, raw, log_prob)), log_prob

    def update_actor_and_temperature(current):
        actor_params, log_alpha, actor_opt, alpha_opt = current
        (loss, log_prob), grads = jax.value_and_grad(actor_objective, has_aux=True)(actor_params)
        actor_tx = off_policy.optimizer(config, hp, hp.actor_learning_rate)
        actor_params, actor_opt = common.optimizer_step(actor_tx, grads, actor_opt, actor_params)
        log_alpha, alpha_opt, alpha_metrics = off_policy.temperature_step(
            config, env, hp, log_alpha, alpha_opt, log_prob
        )
        metrics = {"actor_loss": loss, **alpha_metrics, "entropy": -jnp.mean(log_prob)}
        return (actor_params, log_alpha, actor_opt, alpha_opt), metrics

    current = (params.actor, params.log_alpha, state.opt_state.actor, state.opt_state.alpha)
    (actor, log_alpha, actor_opt, alpha_opt), actor_metrics = off_policy.delayed(
        config.policy_delay, state.num_updates, update_actor_and_temperature, current
    )

    new_params = Params(actor, critic, polyak_update(params.target_critic, critic, hp.tau), log_alpha)
    metrics = {"critic_loss": q_loss, **actor_metrics, "alpha": alpha, "q_mean": jnp.mean(q)}
    new_state = state.replace(
        params=new_params, opt_state=OptStates(actor_opt, critic_opt, alpha_opt), num_updates=state.num_updates + 1
    )
    return off_policy.set_priorities(config, new_state, batch, error), metrics


def explore(config: Config, env: Env, state: State):
    """The behaviour policy: a sample of the current policy."""
    return off_policy.sample_from(lambda obs: policy(config, env, state.params.actor, obs))


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""
    return off_policy.train_iteration(config, env, state, explore(config, env, state), gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Env actions for raw observations: the squashed mean (Bernoulli: the likelier extreme) when
    ``deterministic``, else a sample."""
    dist = policy(config, env, state.params.actor, off_policy.prepare_obs(config, state, obs))
    return dist.env_action(dist.mode() if deterministic else dist.sample(key))


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``min_k Q_k(obs, deterministic action)`` for raw observations."""
    norm_obs = off_policy.prepare_obs(config, state, obs)
    _, critic_net, rep = _networks(config, env)
    action = act(config, env, state, obs, jax.random.PRNGKey(0), deterministic=True)
    return jnp.min(rep.decode(critic_net.apply(state.params.critic, norm_obs, action)), axis=0)
