"""Uniform replay buffer that lives inside the train state (a flashbax item buffer).

The buffer's state is a pytree (``flashbax`` ``TrajectoryBufferState``), so it is checkpointed and
restored with the rest of the train state, and resumed runs sample exactly what they would have.
Items are whole transitions (see :class:`Transition`); every env step adds one batch of ``num_envs``
items, overwriting the oldest once ``capacity`` is reached.
"""

from __future__ import annotations

from typing import Any

import flashbax as fbx
import jax
from flax import struct


@struct.dataclass
class Transition:
    """One env transition; ``next_obs`` is the true next observation (the final one at episode end)."""

    obs: jax.Array
    action: jax.Array  # as the env received it ([-1, 1] for continuous, int for discrete)
    reward: jax.Array
    terminated: jax.Array  # bool: the MDP ended, do not bootstrap
    truncated: jax.Array  # bool: a time limit ended the episode, bootstrap from next_obs
    next_obs: jax.Array


class ReplayBuffer:
    """Pure functions over a buffer state: ``init(example_item)``, ``add(state, batch)``, ``sample(state, key)``."""

    def __init__(self, capacity: int, sample_batch_size: int):
        self.capacity = capacity
        self.sample_batch_size = sample_batch_size
        self._buffer = fbx.make_item_buffer(
            max_length=capacity, min_length=1, sample_batch_size=sample_batch_size, add_batches=True
        )

    def init(self, example_item: Any) -> Any:
        """Empty buffer state with room for ``capacity`` items shaped like ``example_item`` (no batch axis)."""
        return self._buffer.init(example_item)

    def add(self, state: Any, batch: Any) -> Any:
        """Appends ``batch`` (leading axis: items), overwriting the oldest items when full."""
        return self._buffer.add(state, batch)

    def sample(self, state: Any, key: jax.Array) -> Any:
        """``sample_batch_size`` items drawn uniformly, with replacement, from those stored."""
        return self._buffer.sample(state, key).experience

    @staticmethod
    def size(state: Any) -> jax.Array:
        """Number of items stored (int32)."""
        capacity = jax.tree.leaves(state.experience)[0].shape[1]
        return jax.numpy.where(state.is_full, capacity, state.current_index)
