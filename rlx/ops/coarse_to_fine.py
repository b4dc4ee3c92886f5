"""Coarse-to-fine action discretization (CQN, Seo et al. 2024, "Continuous Control with Coarse-to-fine
Reinforcement Learning").

Each action dimension in ``[-1, 1]`` is refined over ``levels`` levels: at every level the current interval is
cut into ``bins`` equal bins and one is chosen, which becomes the next level's interval. A path of bin indices
``[..., levels, D]`` decodes to the centre of its final interval, so the reachable actions are a grid of
``bins ** levels`` points per dimension (with 3 levels x 5 bins: -0.992, -0.976, ..., 0.992; never exactly +-1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def zoom_in(low: jax.Array, high: jax.Array, index: jax.Array, bins: int) -> tuple[jax.Array, jax.Array]:
    """The interval of bin ``index`` when ``[low, high]`` is cut into ``bins`` equal bins (elementwise)."""
    width = (high - low) / bins
    low = low + width * index
    return low, low + width


def encode_action(action: jax.Array, levels: int, bins: int) -> jax.Array:
    """Bin indices ``[..., levels, D]`` (int32) of the path whose intervals contain ``action [..., D]``; values
    outside ``[-1, 1]`` take the edge bins."""
    low, high = -jnp.ones_like(action), jnp.ones_like(action)
    indices = []
    for _ in range(levels):
        width = (high - low) / bins
        index = jnp.clip(jnp.floor((action - low) / width), 0, bins - 1).astype(jnp.int32)
        low, high = zoom_in(low, high, index, bins)
        indices.append(index)
    return jnp.stack(indices, axis=-2)


def _path_intervals(indices: jax.Array, bins: int) -> list[tuple[jax.Array, jax.Array]]:
    """The ``levels + 1`` intervals ``(low, high)``, each ``[..., D]``, along a path ``[..., levels, D]``:
    ``[-1, 1]``, then the one chosen at each level."""
    low = -jnp.ones(indices.shape[:-2] + indices.shape[-1:], jnp.float32)
    intervals = [(low, -low)]
    for level in range(indices.shape[-2]):
        intervals.append(zoom_in(*intervals[-1], indices[..., level, :], bins))
    return intervals


def interval_centres(indices: jax.Array, bins: int) -> jax.Array:
    """``[..., levels, D]``: for each level, the centre of the interval that level cuts into bins (the level's
    network input; zeros at level 0), along the path ``indices [..., levels, D]``."""
    return jnp.stack([(low + high) / 2 for low, high in _path_intervals(indices, bins)[:-1]], axis=-2)


def decode_action(indices: jax.Array, bins: int) -> jax.Array:
    """The action ``[..., D]`` of a path ``[..., levels, D]``: the centre of its finest interval."""
    low, high = _path_intervals(indices, bins)[-1]
    return (low + high) / 2


def snap(action: jax.Array, levels: int, bins: int) -> jax.Array:
    """``action [..., D]`` moved to the centre of its finest bin (the grid point the agent can represent)."""
    return decode_action(encode_action(action, levels, bins), bins)


def tie_broken_argmax(q: jax.Array, key: jax.Array, delta: jax.Array | float) -> jax.Array:
    """``argmax`` over the last axis of ``q [..., bins]``, or a uniformly random bin where all values lie
    within ``delta`` of each other (CQN's tie-break; with zero-initialized heads every early choice is random)."""
    greedy = jnp.argmax(q, axis=-1)
    flat = jnp.max(q, axis=-1) - jnp.min(q, axis=-1) < delta
    random = jax.random.randint(key, greedy.shape, 0, q.shape[-1])
    return jnp.where(flat, random, greedy).astype(jnp.int32)
