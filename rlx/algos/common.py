"""Pieces every algorithm file uses: traced hyperparameters in the state, the optimizer, network inputs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from rlx.config import ConfigError, traced_fields
from rlx.envs import Env


@jax.tree_util.register_pytree_with_keys_class
class Hyperparams:
    """An algorithm's traced hyperparameters as float32 scalars (read as attributes), held in the train
    state so runs can be vmapped over them. Built from the config's ``traced=True`` fields, never listed
    by hand. An optional traced field set to ``None`` (e.g. ``max_grad_norm: null``, no clipping) is left
    out: whether it is on is then a static property of the program (:meth:`get` returns None)."""

    def __init__(self, values: dict[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    @classmethod
    def from_config(cls, config: Any) -> Hyperparams:
        values = {name: getattr(config, name) for name in traced_fields(type(config))}
        return cls({name: jnp.asarray(v, jnp.float32) for name, v in values.items() if v is not None})

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` when the field is off (``None``) for this run."""
        return self._values.get(name, default)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no traced hyperparameter {name!r}; have {', '.join(self._values)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Hyperparams is immutable; use .replace(name=value)")

    def replace(self, **changes: Any) -> Hyperparams:
        unknown = set(changes) - set(self._values)
        if unknown:
            raise AttributeError(
                f"no traced hyperparameter {', '.join(sorted(unknown))}; have {', '.join(self._values)}"
            )
        return Hyperparams({**self._values, **changes})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Hyperparams({', '.join(f'{k}={v}' for k, v in self._values.items())})"

    def tree_flatten_with_keys(self):
        return tuple((jax.tree_util.GetAttrKey(k), v) for k, v in self._values.items()), tuple(self._values)

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(dict(zip(names, children)))


def optimizer(
    learning_rate: Any,
    max_grad_norm: Any = None,
    eps: float = 1e-8,
    b1: float = 0.9,
    b2: float = 0.999,
    weight_decay: Any = None,
) -> optax.GradientTransformation:
    """Adam after optional global-norm clipping, with optional decoupled weight decay (AdamW); every
    argument may be traced. Built inside the jitted update, because the learning rate and the clip norm
    live in the state; ``init`` does not depend on them."""
    parts = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps))
    if weight_decay is not None:
        parts.append(optax.add_decayed_weights(weight_decay))
    return optax.chain(*parts, optax.scale(-learning_rate))


def optimizer_step(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any) -> tuple[Any, Any]:
    """``(params, opt_state)`` after one update of ``tx``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def dummy_obs(env: Env) -> jax.Array:
    """A batch of one zero observation, for network init."""
    return jnp.zeros((1, *env.observation_shape), jnp.float32)


def dummy_action(env: Env) -> jax.Array:
    """A batch of one zero box action, for critic init."""
    return jnp.zeros((1, *env.action_space.shape), jnp.float32)


def progress(state: Any) -> jax.Array:
    """Fraction of the run done, ``iteration / total_iterations`` (for schedules)."""
    return state.iteration.astype(jnp.float32) / jnp.maximum(state.total_iterations, 1)


def check_network(
    section: Any, prefix: str, *, dropout: bool = True, batch_renorm: bool = False, hyperspherical: bool = False
) -> None:
    """One-line errors for network options an algorithm cannot use."""
    if not hyperspherical and section.architecture == "simbav2":
        raise ConfigError(
            f"{prefix}architecture: simbav2 networks need their weights projected after every update, which "
            "only the simbav2 algorithm does; use mlp"
        )
    if not batch_renorm and section.norm == "batch_renorm":
        raise ConfigError(
            f"{prefix}norm: batch_renorm is not supported here (it needs CrossQ's joint forward "
            "pass of current and next batches); use none or layer"
        )
    if not dropout and section.dropout > 0:
        raise ConfigError(
            f"{prefix}dropout: must be 0 here (collection and update must see the same network); "
            f"got {section.dropout:g}"
        )
