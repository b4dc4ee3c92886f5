"""Small pieces every algorithm file uses."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


class Hyperparams(struct.PyTreeNode):
    """Base of an algorithm's traced hyperparameters: one float32 array per traced config field, held
    in the train state so runs can be vmapped over them. Subclasses declare the fields."""

    @classmethod
    def from_config(cls, config: Any) -> "Hyperparams":
        return cls(**{f.name: jnp.asarray(getattr(config, f.name), jnp.float32) for f in dataclasses.fields(cls)})


def adam_step(grads: Any, opt_state: Any, params: Any, learning_rate: jax.Array) -> tuple[Any, Any]:
    """One Adam update with a traced learning rate (Adam's state does not depend on it, so a state made by
    ``optax.adam(1.0).init`` works). Returns ``(params, opt_state)``."""
    updates, opt_state = optax.adam(learning_rate).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
