"""Uniform replay buffer that lives inside the train state (a flashbax trajectory buffer).

Transitions are stored per env in time order (``[num_envs, capacity // num_envs]``), so the buffer can
hand out single transitions or runs of ``sequence_length`` consecutive transitions of one env (for
n-step returns). Its state is a pytree (``flashbax`` ``TrajectoryBufferState``): it is checkpointed and
restored with the rest of the train state, and a resumed run samples exactly what it would have.
"""

from __future__ import annotations

from typing import Any

import flashbax as fbx
import jax
import jax.numpy as jnp

from rlx.rollout import Transition

__all__ = ["ReplayBuffer", "Transition"]


class ReplayBuffer:
    """Pure functions over a buffer state: ``init(example_item)``, ``add(state, batch)``, ``sample(state, key)``.

    ``capacity`` transitions in all (``capacity // num_envs`` per env); each ``add`` appends one item per
    env, overwriting the oldest when full. ``sample`` draws ``sample_batch_size`` start positions
    uniformly, with replacement, among those whose ``sequence_length`` transitions are all stored.
    """

    def __init__(self, capacity: int, sample_batch_size: int, num_envs: int = 1, sequence_length: int = 1):
        self.capacity_per_env = capacity // num_envs
        self.num_envs = num_envs
        self.sequence_length = sequence_length
        self._buffer = fbx.make_trajectory_buffer(
            add_batch_size=num_envs,
            sample_batch_size=sample_batch_size,
            sample_sequence_length=sequence_length,
            period=1,
            min_length_time_axis=sequence_length,
            max_length_time_axis=self.capacity_per_env,
        )

    @property
    def capacity(self) -> int:
        return self.capacity_per_env * self.num_envs

    def init(self, example_item: Any) -> Any:
        """Empty buffer state for items shaped like ``example_item`` (no batch axis)."""
        return self._buffer.init(example_item)

    def add(self, state: Any, batch: Any) -> Any:
        """Appends ``batch`` (leading axis ``num_envs``: one new item per env)."""
        return self._buffer.add(state, jax.tree.map(lambda x: x[:, None], batch))

    def add_steps(self, state: Any, steps: Any) -> Any:
        """Appends time-major ``steps`` ``[T, num_envs, ...]`` (T new items per env, in order); the same state
        as T calls of :meth:`add`."""
        return self._buffer.add(state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps))

    def sample(self, state: Any, key: jax.Array) -> Any:
        """Items ``[batch, ...]`` if ``sequence_length`` is 1, else runs ``[batch, sequence_length, ...]``."""
        experience = self._buffer.sample(state, key).experience
        if self.sequence_length == 1:
            return jax.tree.map(lambda x: x[:, 0], experience)
        return experience

    @staticmethod
    def size(state: Any) -> jax.Array:
        """Number of transitions stored (int32)."""
        num_envs, per_env = jax.tree.leaves(state.experience)[0].shape[:2]
        return num_envs * jnp.where(state.is_full, per_env, state.current_index)
