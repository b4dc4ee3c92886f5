"""Proximal Policy Optimization (Schulman et al., 2017); A2C is the preset ``configs/a2c_*.yaml``.

One iteration (``train_step``) collects ``unroll_length`` steps from ``num_envs`` vmapped envs, computes
GAE(lambda) advantages, then runs ``num_epochs`` passes of ``num_minibatches`` clipped-surrogate updates: the
shared on-policy actor-critic of :mod:`rlx.algos.policy_gradient` (networks, recurrent memory, rollout,
advantages, minibatch loop) with PPO's loss.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp

from rlx.algos import common, policy_gradient
from rlx.algos.policy_gradient import (  # noqa: F401  (PPO's interface: the registry and tests use them as ppo.*)
    Batch,
    Memory,
    Params,
    PolicyGradientConfig,
    Rollout,
    SegmentBatch,
    SequenceBatch,
    State,
    act,
    act_step,
    batch_outputs,
    collect,
    init,
    initial_memory,
    iterate,
    make_batch,
    policy_distribution,
    recurrent,
    steps_per_iteration,
    value,
    value_estimate,
    with_advantages,
    with_value_and_entropy,
)
from rlx.config import field
from rlx.envs import Env
from rlx.ops.losses import clipped_surrogate_loss, normalize_advantages

DESCRIPTION = "PPO: clipped surrogate, GAE(lambda), minibatch epochs (A2C is a preset)"
ACTION_SPACES = ("discrete", "box")
DICT_OBSERVATIONS = True  # each network picks its entry (agent.policy.obs_key, agent.value.obs_key)


@dataclasses.dataclass(frozen=True)
class Config(PolicyGradientConfig):
    """PPO hyperparameters: the shared policy-gradient ones plus the ratio clip."""

    clip_epsilon: float = field(0.2, traced=True, gt=0, doc="ratio clip range")

    RECURRENT: ClassVar[bool] = True


def loss_fn(
    params: Params,
    config: Config,
    env: Env,
    hparams: common.Hyperparams,
    batch: Batch,
    key: jax.Array,
) -> tuple[jax.Array, dict]:
    """Clipped surrogate + ``value_coef`` * value loss - ``entropy_coef`` * entropy."""
    dist, values = batch_outputs(config, env, params, batch)
    batch = with_advantages(config, env, params, hparams, batch, values)
    advantages = batch.advantages
    if config.normalize_advantages:
        advantages = normalize_advantages(advantages)
    log_prob = dist.log_prob(batch.raw_action)
    policy_loss, ratio = clipped_surrogate_loss(log_prob, batch.log_prob, advantages, hparams.clip_epsilon)
    loss, metrics = with_value_and_entropy(
        config, env, params, hparams, batch, dist, policy_loss, log_prob, key, values
    )
    metrics["clip_fraction"] = jnp.mean(jnp.abs(ratio - 1.0) > hparams.clip_epsilon)
    return loss, metrics


def _loss_for(config: Config, env: Env, state: State):
    """PPO's loss at the hyperparameters of ``state``."""
    return lambda params, minibatch, key: loss_fn(params, config, env, state.hparams, minibatch, key)


def update(config: Config, env: Env, state: State, batch: Batch) -> tuple[State, dict]:
    """``num_epochs`` x ``num_minibatches`` gradient steps of PPO's loss on ``batch``."""
    return policy_gradient.update(config, env, state, batch, _loss_for(config, env, state))


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect, compute advantages, update, then fold the rollout into the
    observation statistics (after the update, so the first minibatch sees ratio 1 exactly)."""
    return iterate(config, env, state, make_batch, functools.partial(_loss_for, config, env))
