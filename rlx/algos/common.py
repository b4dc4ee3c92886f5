"""Pieces every algorithm file uses: traced hyperparameters in the state, the optimizer, network inputs."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.config import ConfigError, field, traced_fields
from rlx.envs import Env, EnvStep, training_env
from rlx.ops.normalization import RunningStats, init_stats, normalize, update_stats

GRADIENT_STEPS = "gradient_steps"  # metric: an iteration's gradient steps (0 in an off-policy warm-up)


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


@dataclasses.dataclass(frozen=True)
class ObservationNormalization:
    """Fields of observation normalization by running statistics, shared by every algorithm: the networks
    see ``clip((x - mean) / (sqrt(var + obs_norm_var_eps) + obs_norm_std_eps), +-obs_norm_clip)``."""

    normalize_observations: bool = field(False, doc="Welford running mean/std of observations")
    obs_norm_clip: float | None = field(
        10.0,
        gt=0,
        doc="normalize_observations: normalized values are clipped to +-this (null: not clipped)",
        read_with={"normalize_observations": (True,)},
    )
    obs_norm_var_eps: float = field(
        1e-8,
        ge=0,
        doc="normalize_observations: divide by sqrt(var + this) + obs_norm_std_eps (gymnasium, SB3)",
        read_with={"normalize_observations": (True,)},
    )
    obs_norm_std_eps: float = field(
        0.0,
        ge=0,
        doc="normalize_observations: added to the std (FastTD3, rsl_rl: 0.01, with obs_norm_var_eps 0)",
        read_with={"normalize_observations": (True,)},
    )

    def check(self) -> None:
        if self.obs_norm_var_eps == 0 and self.obs_norm_std_eps == 0:
            raise ConfigError(
                "agent.obs_norm_var_eps, agent.obs_norm_std_eps: one must be > 0 (a constant observation feature "
                "would be divided by zero); got both 0"
            )


@dataclasses.dataclass(frozen=True)
class RolloutConfig(ObservationNormalization):
    """Fields of the on-policy-shaped loop (PPO, PQN): a rollout of ``unroll_length`` steps from ``num_envs``
    envs, then ``num_epochs`` passes of ``num_minibatches`` minibatches over it (:func:`minibatch_epochs`)."""

    num_envs: int = field(16, gt=0, doc="parallel envs")
    unroll_length: int = field(128, gt=0, doc="env steps per env per iteration")
    num_minibatches: int = field(4, gt=0, doc="minibatches per epoch; must divide num_envs*unroll_length")
    num_epochs: int = field(4, gt=0, doc="passes over each rollout")
    obs_stats_from_reset: bool = field(
        True,
        doc="normalize_observations: the statistics start from the envs' reset observations; false: empty, so the "
        "first rollout acts and trains on raw observations (brax.training's start)",
        read_with={"normalize_observations": (True,)},
    )

    def check(self) -> None:
        super().check()
        batch = self.num_envs * self.unroll_length
        if batch % self.num_minibatches:
            raise ConfigError(
                f"agent.num_minibatches: must divide num_envs*unroll_length = {batch}; got {self.num_minibatches}"
            )


@struct.dataclass
class RolloutState:
    """The train state of the rollout-and-minibatch loop (PPO, PQN): everything a run needs to continue bit
    for bit."""

    params: Any  # the algorithm's networks
    opt_state: Any
    env_step: EnvStep  # [num_envs] current envs, after auto-reset
    obs_stats: RunningStats
    key: jax.Array
    iteration: jax.Array  # int32, completed iterations
    total_iterations: jax.Array  # int32, length of the run (for schedules)
    hparams: Hyperparams
    memory: Any = ()  # recurrent networks' carries [num_envs, ...] (PPO with recurrent networks; () otherwise)


def start_rollout(
    config: RolloutConfig,
    env: Env,
    env_key: jax.Array,
    total_iterations: int,
    *,
    params: Any,
    opt_state: Any,
    hparams: Hyperparams,
    key: jax.Array,
    memory: Any = (),
) -> RolloutState:
    """A fresh :class:`RolloutState`: ``config.num_envs`` envs reset from ``env_key``, observation statistics seeded
    with their first observations (empty without ``config.obs_stats_from_reset``), zero completed iterations."""
    env_step = training_env(env, config.num_envs).reset(env_key)
    obs_stats = init_stats(env.observation_shape)
    return RolloutState(
        params=params,
        opt_state=opt_state,
        env_step=env_step,
        obs_stats=update_stats(obs_stats, env_step.obs) if config.obs_stats_from_reset else obs_stats,
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        total_iterations=jnp.asarray(total_iterations, jnp.int32),
        hparams=hparams,
        memory=memory,
    )


def network_obs(config: ObservationNormalization, obs_stats: RunningStats, obs: jax.Array) -> jax.Array:
    """What the networks see: ``obs`` normalized by the running statistics when the config asks for it."""
    if not config.normalize_observations:
        return obs
    return normalize(obs_stats, obs, config.obs_norm_clip, config.obs_norm_var_eps, config.obs_norm_std_eps)


def optimizer(
    learning_rate: Any,
    max_grad_norm: Any = None,
    eps: float = 1e-8,
    b1: float = 0.9,
    b2: float = 0.999,
    weight_decay: Any = None,
    rectified: bool = False,
) -> optax.GradientTransformation:
    """Adam (RAdam with ``rectified``) after optional global-norm clipping, with optional decoupled weight
    decay (AdamW); every
    argument may be traced. Built inside the jitted update, because the learning rate and the clip norm
    live in the state; ``init`` does not depend on them."""
    parts = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    parts.append(
        optax.scale_by_radam(b1=b1, b2=b2, eps=eps) if rectified else optax.scale_by_adam(b1=b1, b2=b2, eps=eps)
    )
    if weight_decay is not None:
        parts.append(optax.add_decayed_weights(weight_decay))
    return optax.chain(*parts, optax.scale(-learning_rate))


def optimizer_step(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any) -> tuple[Any, Any]:
    """``(params, opt_state)`` after one update of ``tx``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def batch_size(obs: jax.Array | dict) -> int:
    """The leading (batch) size of observations ``[N, ...]`` or of a dict of them."""
    return jax.tree.leaves(obs)[0].shape[0]


def dummy_obs(env: Env) -> jax.Array | dict:
    """A batch of one zero observation, for network init (a dict of them for dict observations)."""
    shape = env.observation_shape
    if isinstance(shape, dict):
        return {key: jnp.zeros((1, *s), jnp.float32) for key, s in shape.items()}
    return jnp.zeros((1, *shape), jnp.float32)


def dummy_action(env: Env) -> jax.Array:
    """A batch of one zero box action, for critic init."""
    return jnp.zeros((1, *env.action_space.shape), jnp.float32)


def progress(state: Any) -> jax.Array:
    """Fraction of the run done, ``iteration / total_iterations`` (for schedules)."""
    return state.iteration.astype(jnp.float32) / jnp.maximum(state.total_iterations, 1)


def epsilon(state: Any) -> jax.Array:
    """Linearly annealed from ``epsilon_start`` to ``epsilon_end`` over ``exploration_fraction`` of the run
    (DQN, PQN; traced fields of those names)."""
    hp = state.hparams
    fraction = jnp.clip(progress(state) / hp.exploration_fraction, 0.0, 1.0)
    return hp.epsilon_start + fraction * (hp.epsilon_end - hp.epsilon_start)


def epsilon_greedy(
    q_values: jax.Array, eps: jax.Array, key: jax.Array, temperature: jax.Array | None = None
) -> jax.Array:
    """int32 actions ``[...]`` from values ``[..., num_actions]``: uniformly random with probability ``eps``, else
    greedy, or with a ``temperature`` drawn from ``softmax(q_values / temperature)`` (epsilon-softmax)."""
    if temperature is None:
        explore_key, action_key = jax.random.split(key)
        chosen = jnp.argmax(q_values, axis=-1)
    else:
        explore_key, action_key, policy_key = jax.random.split(key, 3)
        chosen = jax.random.categorical(policy_key, q_values / temperature, axis=-1)
    random_action = jax.random.randint(action_key, chosen.shape, 0, q_values.shape[-1])
    return jnp.where(jax.random.uniform(explore_key, chosen.shape) < eps, random_action, chosen).astype(jnp.int32)


def check_network(
    section: Any,
    prefix: str,
    *,
    dropout: bool = True,
    batch_renorm: bool = False,
    hyperspherical: bool = False,
    recurrent: bool = False,
    noisy: bool = False,
) -> None:
    """One-line errors for network options an algorithm cannot use."""
    if not noisy and section.noisy_std > 0:
        raise ConfigError(
            f"{prefix}noisy_std: noisy layers are DQN's (its acting and targets draw their noise); got "
            f"{section.noisy_std:g}, use 0"
        )
    if not recurrent and section.recurrent != "none":
        raise ConfigError(
            f"{prefix}recurrent: this algorithm takes feed-forward networks only (PPO's policy and value networks can "
            "be recurrent; an algorithm on policy_gradient opts in with Config.RECURRENT = True); got "
            f"{section.recurrent}"
        )
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


def minibatch_epochs(
    gradient_step: Any, params: Any, opt_state: Any, key: jax.Array, batch: Any, num_epochs: int, num_minibatches: int
) -> tuple[Any, Any, jax.Array, dict]:
    """``num_epochs`` passes over ``batch`` (a pytree, samples on the leading axis), each a fresh shuffle cut
    into ``num_minibatches`` minibatches, calling ``gradient_step(params, opt_state, minibatch, key) ->
    (params, opt_state, metrics)`` on each with its own key (PPO's and PQN's update). Returns
    ``(params, opt_state, key, metrics averaged over all steps)``."""

    def minibatch_step(carry, minibatch):
        params, opt_state, key = carry
        key, step_key = jax.random.split(key)
        params, opt_state, metrics = gradient_step(params, opt_state, minibatch, step_key)
        return (params, opt_state, key), metrics

    def epoch(carry, _):
        params, opt_state, key = carry
        key, perm_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, jax.tree.leaves(batch)[0].shape[0])
        minibatches = jax.tree.map(lambda x: x[order].reshape((num_minibatches, -1, *x.shape[1:])), batch)
        return jax.lax.scan(minibatch_step, (params, opt_state, key), minibatches)

    (params, opt_state, key), metrics = jax.lax.scan(epoch, (params, opt_state, key), None, length=num_epochs)
    return params, opt_state, key, jax.tree.map(jnp.mean, metrics)
