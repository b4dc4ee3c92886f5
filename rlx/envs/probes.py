"""Probe envs: tiny MDPs whose values and optimal policies are known exactly, for checking that an
algorithm's value learning, bootstrapping and policy improvement are wired correctly (after Andy Jones'
"debugging RL" probes; rejax tests algorithms the same way). ``probe/<kind>`` has two discrete actions,
``probe/<kind>-box`` one continuous action in [-1, 1]. Observations are one float.

| kind | episode | reward | optimal value |
|---|---|---|---|
| ``constant`` | 1 step, obs 0 | 1 | V = 1 |
| ``observation`` | 1 step, obs -1 or +1 at random | obs | V(obs) = obs |
| ``discount`` | 2 steps, obs 0 then 1 | 1 at the end | V(0) = gamma, V(1) = 1 |
| ``action`` | 1 step, obs 0 | discrete: 1 for action 1, else 0; box: -(a - 0.5)^2 | 1 / 0 (at a = 0.5) |
| ``obs_action`` | 1 step, obs -1 or +1 | discrete: 1 if the action is (obs > 0), else 0; box: -(a - obs/2)^2 | 1 / 0 (a = obs/2) |

The kind may also be a traced index into ``PROBES``, so one compiled program can train on all five
(``jax.vmap`` over the index; the conformance tests do this).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlx.envs.base import Box, Discrete, EnvStep, first_step

PROBES = ("constant", "observation", "discount", "action", "obs_action")


class ProbeEnv:
    """One probe MDP (see the module docstring); its state is the step count within the episode."""

    def __init__(self, kind: str | Any, box: bool = False):
        if isinstance(kind, str):
            if kind not in PROBES:
                from rlx.envs.adapters import EnvError

                raise EnvError(
                    f"env probe/{kind}: unknown probe; available: {', '.join(PROBES)} (add -box for a "
                    "continuous action)"
                )
            self.index = PROBES.index(kind)
            self.name = f"probe/{kind}" + ("-box" if box else "")
        else:
            self.index, self.name = kind, "probe/<traced>" + ("-box" if box else "")
        self.box = box
        self.observation_shape = (1,)
        self.action_space = Box((1,), (-1.0,), (1.0,)) if box else Discrete(2)
        self.max_episode_steps = 2  # the longest probe episode (discount)

    def _is(self, kind: str) -> jax.Array:
        return jnp.asarray(self.index) == PROBES.index(kind)

    def reset(self, key: jax.Array) -> EnvStep:
        signed = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        obs = jnp.where(self._is("observation") | self._is("obs_action"), signed, 0.0)
        return first_step(jnp.zeros((), jnp.int32), obs[None].astype(jnp.float32))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        obs = env_step.obs[0]
        steps = env_step.state + 1
        if self.box:
            target = jnp.where(self._is("action"), 0.5, 0.5 * obs)
            action_reward = -jnp.square(jnp.reshape(action, ()) - target)
        else:
            best = jnp.where(self._is("action"), 1, (obs > 0).astype(jnp.int32))
            action_reward = (action == best).astype(jnp.float32)
        reward = jnp.select(
            [self._is("constant"), self._is("observation"), self._is("discount")],
            [jnp.ones(()), obs, (steps == 2).astype(jnp.float32)],
            action_reward,
        )
        done = steps >= jnp.where(self._is("discount"), 2, 1)
        next_obs = jnp.where(done, obs, steps.astype(jnp.float32))  # discount: obs 0, then 1
        return EnvStep(
            steps, next_obs[None].astype(jnp.float32), reward.astype(jnp.float32), done, jnp.zeros((), bool), {}
        )
