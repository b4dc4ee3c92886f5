"""Off-policy Mirror Descent Policy Optimization (Tomar et al. 2022, "Mirror Descent Policy Optimization").

SAC (``rlx.algos.sac``: twin clipped critics, Polyak targets, soft TD targets, the same loop) whose actor
takes mirror-descent steps: its loss gains a KL term to the policy ``pi_k`` of the current iteration,

    alpha log pi(a~|s) - min_k Q_k(s, a~) + (log pi(a~|s) - log pi_k(a~|s)) / t,     a~ ~ pi(.|s) reparameterized

(a one-sample estimate of ``KL(pi || pi_k)`` at the same action), where ``pi_k`` is a copy of the actor
refreshed every ``old_policy_every`` gradient steps (the paper's m = 1000 inner steps per iteration k) and
``t`` the constant step size. Defaults follow the authors' code: a fixed temperature 0.2 (their lambda) and
a KL weight ``1/t = 0.8`` (their ``klcoeff`` 1 minus lambda: their actor loss
``c log pi + (lambda - c) log pi_k - Q`` is this one with ``1/t = c - lambda``).

Differences from the authors' code (manantomar/Mirror-Descent-Policy-Optimization, ``mdpo_off``): rlx's SAC
critics (clipped double-Q soft targets; theirs are SAC v1's with a separate V network), the actor against the
min of the critics (theirs: Q1) and without their 1e-3 penalty on the Gaussian's mean and log-std, and the
behaviour policy samples (theirs acts with the mean after the warm-up).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from rlx.algos import off_policy, sac
from rlx.config import ConfigError, field
from rlx.envs import Env

DESCRIPTION = "MDPO (off-policy): SAC whose actor steps are regularized by KL to a periodically frozen policy"
ACTION_SPACES = ("box",)


@dataclasses.dataclass(frozen=True)
class Config(sac.Config):
    """SAC's hyperparameters plus the mirror-descent step; the temperature is fixed by default (the authors')."""

    autotune_alpha: bool = field(False, doc="learn alpha toward target_entropy; else keep initial_alpha (authors')")
    initial_alpha: float = field(0.2, traced=True, gt=0, doc="temperature (the paper's lambda)")
    old_policy_every: int = field(1000, gt=0, doc="gradient steps per mirror-descent iteration (pi_k refreshed)")
    step_size: float = field(1.25, traced=True, gt=0, doc="mirror-descent step size t (KL weight 1/t)")

    NAME: ClassVar[str] = "off-policy MDPO"
    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {
        **sac.Config.RESETTABLE,
        "actor": (*sac.Config.RESETTABLE["actor"], "old_actor"),
    }

    def check(self) -> None:
        if self.actor.distribution == "bernoulli":  # its KL estimate needs the sampled action's log-prob
            raise ConfigError("agent.actor.distribution: off-policy MDPO needs gaussian; got bernoulli")
        super().check()


Params = sac.Params
OptStates = sac.OptStates


@struct.dataclass
class State(off_policy.ActorCriticState):
    """SAC's state plus ``old_actor``: the parameters of ``pi_k``."""

    old_actor: Any


steps_per_iteration = sac.steps_per_iteration
act = sac.act
value = sac.value


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    """SAC's fresh state, with ``pi_k`` the initial actor."""
    sac_state = sac.init(config, env, key, total_iterations)
    fields = {f.name: getattr(sac_state, f.name) for f in dataclasses.fields(sac_state)}
    return State(**fields, old_actor=sac_state.params.actor)


def kl_penalty(log_prob: jax.Array, old_log_prob: jax.Array, step_size: jax.Array) -> jax.Array:
    """Per-sample ``(log pi(a) - log pi_k(a)) / t`` at actions ``a`` drawn from ``pi``: the KL term's estimate."""
    return (log_prob - old_log_prob) / step_size


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """SAC's gradient step with the KL term in the actor loss; ``pi_k`` is first refreshed to the current
    actor when a new iteration of ``old_policy_every`` steps begins."""
    refresh = state.num_updates % config.old_policy_every == 0
    old_actor = jax.tree.map(lambda new, old: jnp.where(refresh, new, old), state.params.actor, state.old_actor)

    def penalty(obs, raw_action, log_prob):
        old_log_prob = sac.policy(config, env, old_actor, obs).log_prob(raw_action)
        return kl_penalty(log_prob, old_log_prob, state.hparams.step_size)

    return sac.gradient_step(config, env, state.replace(old_actor=old_actor), batch, key, actor_penalty=penalty)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""
    return off_policy.train_iteration(config, env, state, sac.explore(config, env, state), gradient_step, init)
