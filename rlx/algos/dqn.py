"""DQN (Mnih et al., 2015) with double-Q targets, an optional dueling head and n-step returns; the value
loss is one option: ``mse``, ``huber``, ``hl_gauss`` (classification, "Stop Regressing") or ``c51``
(distributional, Bellemare et al., 2017).

Runs on the shared off-policy loop: ``num_envs`` vmapped envs explore epsilon-greedily (linear
schedule) into a replay buffer that hands out runs of ``n_step`` consecutive transitions; n-step
returns stop at the first episode end and bootstrap only if it was a truncation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.algos import common, off_policy
from rlx.buffers import Transition
from rlx.config import ConfigError, field
from rlx.envs import Env, EnvStep
from rlx.nets import ACTIVATIONS
from rlx.ops.distributional import (
    bin_centres,
    categorical_projection,
    cross_entropy,
    hl_gauss_histogram,
    support,
)
from rlx.ops.normalization import RunningStats
from rlx.ops.returns import n_step_return
from rlx.ops.td import polyak_update


@dataclasses.dataclass(frozen=True)
class Config(off_policy.OffPolicyConfig):
    """DQN hyperparameters (the shared off-policy fields plus DQN's)."""

    hidden: tuple[int, ...] = field((64, 64), gt=0, doc="Q-network MLP widths")
    activation: str = field("relu", choices=tuple(ACTIVATIONS))
    dueling: bool = field(False, doc="separate state-value and advantage streams")
    double_q: bool = field(True, doc="online network picks the next action, target network values it")
    n_step: int = field(1, gt=0, doc="steps of real reward before bootstrapping")
    value_loss: str = field("huber", choices=("mse", "huber", "hl_gauss", "c51"))
    num_bins: int = field(51, gt=1, doc="atoms (c51) or histogram bins (hl_gauss)")
    v_min: float = field(-10.0, doc="support of c51 / hl_gauss")
    v_max: float = field(10.0, doc="support of c51 / hl_gauss")
    hl_gauss_sigma_ratio: float = field(0.75, gt=0, doc="HL-Gauss sigma / bin width")
    target_update: str = field("hard", choices=("hard", "polyak"))
    target_update_period: int = field(500, gt=0, doc="gradient steps between hard target copies")
    # Traced
    learning_rate: float = field(2.5e-4, traced=True, gt=0)
    max_grad_norm: float = field(10.0, traced=True, gt=0)
    tau: float = field(0.005, traced=True, gt=0, le=1, doc="Polyak rate (target_update: polyak)")
    epsilon_start: float = field(1.0, traced=True, ge=0, le=1)
    epsilon_end: float = field(0.05, traced=True, ge=0, le=1)
    exploration_fraction: float = field(0.5, traced=True, gt=0, le=1, doc="fraction of the run to anneal epsilon")

    @property
    def sequence_length(self) -> int:
        return self.n_step

    def check(self) -> None:
        super().check()
        if self.value_loss in ("c51", "hl_gauss") and not self.v_min < self.v_max:
            raise ConfigError(f"agent.v_max: must be > v_min = {self.v_min:g}; got {self.v_max:g}")

    @property
    def bins(self) -> int:
        """Outputs per action: 1 for a scalar Q, ``num_bins`` for c51 / hl_gauss."""
        return self.num_bins if self.value_loss in ("c51", "hl_gauss") else 1


class Hyperparams(common.Hyperparams):
    """The traced fields of :class:`Config`, as float32 arrays."""

    gamma: jax.Array
    reward_scaling: jax.Array
    learning_rate: jax.Array
    max_grad_norm: jax.Array
    tau: jax.Array
    epsilon_start: jax.Array
    epsilon_end: jax.Array
    exploration_fraction: jax.Array


@struct.dataclass
class Params:
    online: Any
    target: Any


@struct.dataclass
class State:
    """Everything a DQN run needs to continue bit for bit, replay buffer included."""

    params: Params
    opt_state: Any
    env_step: EnvStep
    buffer: Any
    obs_stats: RunningStats
    key: jax.Array
    iteration: jax.Array
    total_iterations: jax.Array  # int32, for the epsilon schedule
    num_updates: jax.Array  # int32, gradient steps taken (for hard target copies)
    hparams: Hyperparams


def supports(env: Env) -> str | None:
    if env.action_space.kind != "discrete":
        return f"DQN needs discrete actions, got {env.action_space.kind}"
    return None


steps_per_iteration = off_policy.steps_per_iteration


class QNetwork(nn.Module):
    """MLP torso and a (dueling) head with ``bins`` outputs per action: ``[..., num_actions, bins]``."""

    hidden: Sequence[int]
    num_actions: int
    bins: int
    activation: str
    dueling: bool
    obs_ndim: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.reshape((*obs.shape[: obs.ndim - self.obs_ndim], -1))
        for width in self.hidden:
            x = ACTIVATIONS[self.activation](nn.Dense(width)(x))
        advantage = nn.Dense(self.num_actions * self.bins)(x).reshape((*x.shape[:-1], self.num_actions, self.bins))
        if not self.dueling:
            return advantage
        value = nn.Dense(self.bins)(x)[..., None, :]
        return value + advantage - advantage.mean(axis=-2, keepdims=True)


def _network(config: Config, env: Env) -> QNetwork:
    return QNetwork(config.hidden, env.action_space.n, config.bins, config.activation, config.dueling,
                    len(env.observation_shape))


def q_values(config: Config, outputs: jax.Array) -> jax.Array:
    """Scalar Q-values ``[..., num_actions]`` from network outputs (expectation for c51 / hl_gauss)."""
    if config.value_loss == "c51":
        return jnp.sum(jax.nn.softmax(outputs) * support(config.v_min, config.v_max, config.num_bins), axis=-1)
    if config.value_loss == "hl_gauss":
        return jnp.sum(jax.nn.softmax(outputs) * bin_centres(config.v_min, config.v_max, config.num_bins), axis=-1)
    return outputs[..., 0]


def epsilon(state: State) -> jax.Array:
    """Linearly annealed from ``epsilon_start`` to ``epsilon_end`` over ``exploration_fraction`` of the run."""
    hp = state.hparams
    progress = state.iteration.astype(jnp.float32) / jnp.maximum(state.total_iterations, 1)
    fraction = jnp.clip(progress / hp.exploration_fraction, 0.0, 1.0)
    return hp.epsilon_start + fraction * (hp.epsilon_end - hp.epsilon_start)


def _optimizer(hparams: Hyperparams) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(hparams.max_grad_norm), optax.adam(hparams.learning_rate, eps=1e-5))


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    key, net_key, env_key = jax.random.split(key, 3)
    online = _network(config, env).init(net_key, jnp.zeros((1, *env.observation_shape), jnp.float32))
    hparams = Hyperparams.from_config(config)
    return State(params=Params(online, online), opt_state=_optimizer(hparams).init(online), key=key,
                 iteration=jnp.zeros((), jnp.int32), total_iterations=jnp.asarray(total_iterations, jnp.int32),
                 num_updates=jnp.zeros((), jnp.int32), hparams=hparams, **off_policy.init_loop(config, env, env_key))


def td_loss(config: Config, online_out: jax.Array, target_next_out: jax.Array, online_next_out: jax.Array,
            action: jax.Array, returns: jax.Array, discount: jax.Array) -> jax.Array:
    """Per-sample loss for outputs ``[batch, num_actions, bins]`` at ``s_0`` and at the bootstrap state."""
    chooser = online_next_out if config.double_q else target_next_out
    next_action = jnp.argmax(q_values(config, chooser), axis=-1)
    taken = jnp.take_along_axis(online_out, action[:, None, None], axis=1)[:, 0]  # [batch, bins]
    next_taken = jnp.take_along_axis(target_next_out, next_action[:, None, None], axis=1)[:, 0]
    if config.value_loss == "c51":
        atoms = support(config.v_min, config.v_max, config.num_bins)
        projected = categorical_projection(jax.nn.softmax(next_taken), atoms, returns, discount)
        return cross_entropy(taken, projected)
    target = returns + discount * q_values(config, next_taken[:, None])[:, 0]
    if config.value_loss == "hl_gauss":
        sigma = config.hl_gauss_sigma_ratio * (config.v_max - config.v_min) / config.num_bins
        histogram = hl_gauss_histogram(target, config.v_min, config.v_max, config.num_bins, sigma)
        return cross_entropy(taken, histogram)
    error = taken[:, 0] - jax.lax.stop_gradient(target)
    return optax.losses.huber_loss(error) if config.value_loss == "huber" else 0.5 * jnp.square(error)


def gradient_step(config: Config, env: Env, state: State, batch: Transition, key: jax.Array) -> tuple[State, dict]:
    """One update on runs ``[batch, n_step, ...]`` (or single transitions when ``n_step`` is 1)."""
    del key
    hp, params, net = state.hparams, state.params, _network(config, env)
    if config.n_step == 1:
        batch = jax.tree.map(lambda x: x[:, None], batch)
    returns, discount, last = n_step_return(batch.reward * hp.reward_scaling, batch.terminated, batch.truncated, hp.gamma)
    bootstrap_obs = jnp.take_along_axis(
        batch.next_obs, last.reshape((-1, 1) + (1,) * (batch.next_obs.ndim - 2)), axis=1)[:, 0]
    target_next = net.apply(params.target, bootstrap_obs)
    online_next = net.apply(params.online, bootstrap_obs) if config.double_q else target_next

    def objective(online_params):
        out = net.apply(online_params, batch.obs[:, 0])
        loss = td_loss(config, out, target_next, online_next, batch.action[:, 0], returns, discount)
        return jnp.mean(loss), out

    (loss, out), grads = jax.value_and_grad(objective, has_aux=True)(params.online)
    updates, opt_state = _optimizer(hp).update(grads, state.opt_state, params.online)
    online = optax.apply_updates(params.online, updates)
    num_updates = state.num_updates + 1
    if config.target_update == "polyak":
        target = polyak_update(params.target, online, hp.tau)
    else:
        copy = num_updates % config.target_update_period == 0
        target = jax.tree.map(lambda o, t: jnp.where(copy, o, t), online, params.target)
    metrics = {"loss": loss, "q_mean": jnp.mean(q_values(config, out)), "grad_norm": optax.global_norm(grads)}
    return state.replace(params=Params(online, target), opt_state=opt_state, num_updates=num_updates), metrics


def _epsilon_greedy(config: Config, env: Env, online: Any, obs: jax.Array, eps: jax.Array, key: jax.Array) -> jax.Array:
    greedy = jnp.argmax(q_values(config, _network(config, env).apply(online, obs)), axis=-1)
    explore_key, action_key = jax.random.split(key)
    random_action = jax.random.randint(action_key, greedy.shape, 0, env.action_space.n)
    return jnp.where(jax.random.uniform(explore_key, greedy.shape) < eps, random_action, greedy).astype(jnp.int32)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: epsilon-greedy collection into the buffer, then the gradient steps."""
    eps = epsilon(state)
    state, metrics = off_policy.train_iteration(
        config, env, state, lambda obs, key: _epsilon_greedy(config, env, state.params.online, obs, eps, key),
        gradient_step)
    return state, {**metrics, "epsilon": eps}


def act(config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
    """Greedy actions (``deterministic``), else epsilon-greedy with ``epsilon_end``."""
    eps = jnp.where(deterministic, 0.0, state.hparams.epsilon_end)
    return _epsilon_greedy(config, env, state.params.online, off_policy.prepare_obs(config, state.obs_stats, obs), eps, key)
