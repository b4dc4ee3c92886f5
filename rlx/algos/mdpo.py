"""On-policy Mirror Descent Policy Optimization (Tomar et al. 2022, "Mirror Descent Policy Optimization").

PPO's rollout, GAE and minibatch loop with the trust region of mirror descent instead of the ratio clip:
every iteration runs ``num_epochs`` x ``num_minibatches`` gradient steps on

    -mean(r A) + mean(KL(pi || pi_k)) / t_k        (r = pi(a|s) / pi_k(a|s), A the GAE advantage)

where ``pi_k`` is the policy that collected the rollout (fixed during the iteration) and the KL is analytic
(Gaussian, categorical or Bernoulli; a tanh squash leaves it unchanged). The step size anneals linearly,
``t_k = step_size * (1 - k/K)`` over the run's ``K`` iterations, so the KL weight grows from 1 to K.
Defaults follow the authors' code: full-batch steps (``num_minibatches: 1``), ``num_epochs: 10`` (their m),
no entropy bonus, Adam 3e-4 with gradient clipping at 0.5, standardized advantages.

Differences from the authors' code (manantomar/Mirror-Descent-Policy-Optimization): the value network is
trained jointly in the same steps (``value_coef``, unclipped squared error) instead of 5 separate epochs
of 128-sample minibatches with PPO's value clip; ``K`` is the run's own length (they fix it at 10M steps
whatever the budget); the collecting policy is the current one from the first iteration on.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlx.algos import common, policy_gradient
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.ops.losses import (
    mirror_descent_policy_loss,
    mirror_descent_step_size,
    normalize_advantages,
)

DESCRIPTION = "MDPO (on-policy): PPO's rollout with a KL mirror-descent step instead of the ratio clip"
ACTION_SPACES = ("discrete", "box")
DICT_OBSERVATIONS = True  # PPO's networks and rollout


@dataclasses.dataclass(frozen=True)
class Config(policy_gradient.PolicyGradientConfig):
    """MDPO hyperparameters: PPO's shared ones (authors' defaults where they differ) plus the step size."""

    num_minibatches: int = field(1, gt=0, doc="minibatches per epoch (1: full-batch steps, the authors')")
    num_epochs: int = field(10, gt=0, doc="gradient steps per iteration with full batches (the paper's m)")
    entropy_coef: float = field(0.0, traced=True, ge=0)
    step_size_schedule: str = field(
        "linear", choices=("linear", "constant"), doc="linear: t_k = step_size * (1 - k/K), the paper's"
    )
    step_size: float = field(1.0, traced=True, gt=0, doc="initial mirror-descent step size t_0 (KL weight 1/t_k)")

    def check(self) -> None:
        super().check()
        if self.policy.distribution == "gaussian_mixture":
            raise ConfigError(
                "agent.policy.distribution: MDPO needs a closed-form KL (gaussian or bernoulli); got gaussian_mixture"
            )
        if self.advantages != "rollout":  # its batch carries pi_k per sample, which segment batches do not
            raise ConfigError(f"agent.advantages: MDPO computes them once per rollout (rollout); got {self.advantages}")


Params = policy_gradient.Params
State = policy_gradient.State
steps_per_iteration = policy_gradient.steps_per_iteration
init = policy_gradient.init
act = policy_gradient.act
value = policy_gradient.value


@struct.dataclass
class Batch(policy_gradient.Batch):
    """PPO's batch plus the distribution of the policy that collected it, at each sample."""

    old_policy: Any  # the action distribution pi_k(.|s), a pytree of [batch, ...] parameters


def make_batch(config: Config, env: Env, state: State, rollout: policy_gradient.Rollout) -> Batch:
    """PPO's advantages and targets, plus ``pi_k`` at each observation (the params that collected them)."""
    batch = policy_gradient.make_batch(config, env, state, rollout)
    old_policy = policy_gradient.policy_distribution(config, env, state.params, batch.obs)
    return Batch(**{f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}, old_policy=old_policy)


def loss_fn(
    params: Params,
    config: Config,
    env: Env,
    hparams: common.Hyperparams,
    step_size: jax.Array,
    batch: Batch,
    key: jax.Array,
) -> tuple[jax.Array, dict]:
    """Mirror-descent surrogate + ``value_coef`` * value loss - ``entropy_coef`` * entropy at step size ``t_k``."""
    dist = policy_gradient.policy_distribution(config, env, params, batch.obs)
    advantages = normalize_advantages(batch.advantages) if config.normalize_advantages else batch.advantages
    kl = dist.kl(batch.old_policy)
    log_prob = dist.log_prob(batch.raw_action)
    policy_loss, _ = mirror_descent_policy_loss(log_prob, batch.log_prob, advantages, kl, step_size)
    loss, metrics = policy_gradient.with_value_and_entropy(
        config, env, params, hparams, batch, dist, policy_loss, log_prob, key
    )
    return loss, {**metrics, "kl": jnp.mean(kl), "kl_weight": 1.0 / step_size}


def _loss_for(config: Config, env: Env, state: State):
    """The loss of the iteration that starts at ``state`` (its step size ``t_k``)."""
    t_k = mirror_descent_step_size(state.hparams.step_size, common.progress(state), config.step_size_schedule)
    return lambda params, batch, key: loss_fn(params, config, env, state.hparams, t_k, batch, key)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect with ``pi_k``, advantages, mirror-descent steps, observation statistics."""
    return policy_gradient.iterate(config, env, state, make_batch, functools.partial(_loss_for, config, env))
