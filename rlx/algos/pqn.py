"""PQN (Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning"): Q-learning for vectorized envs
with no replay buffer and no target network.

One iteration collects ``unroll_length`` epsilon-greedy steps from ``num_envs`` envs (the rollout PPO
uses), computes Peng's Q(lambda) targets backward over it from ``max_a Q(s', a)`` of the current network
(``rlx.ops.returns.q_lambda_returns``), then runs ``num_epochs`` passes of ``num_minibatches`` regressions
``0.5 (Q(s, a) - G)^2`` (the minibatch loop PPO uses). The Q-network has LayerNorm (what makes the
missing target network stable), RAdam with gradient clipping at 10 and a learning rate decaying linearly to
0; rewards are scaled by ``reward_scaling``. Defaults are the authors' CartPole settings (purejaxql).

Differences from the authors' code: a truncated episode bootstraps from ``max_a Q`` of its final
observation (they treat every episode end as terminal); the targets use the network after collection,
which is the one they collect with (no update happens during the rollout), so both are the same values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.algos import common
from rlx.config import ConfigError, field
from rlx.envs import Env, training_env
from rlx.nets import MLP, Model, QNet
from rlx.ops import values
from rlx.ops.normalization import RunningStats, update_stats
from rlx.ops.returns import q_lambda_returns
from rlx.rollout import PolicyStep, unroll

DESCRIPTION = "PQN: parallel Q-learning, no replay or target network, LayerNorm, Q(lambda), minibatch epochs"
ACTION_SPACES = ("discrete",)


@dataclasses.dataclass(frozen=True)
class Config(common.RolloutConfig):
    """PQN hyperparameters; defaults are the authors' for CartPole (purejaxql ``pqn_cartpole.yaml``)."""

    # Static
    num_envs: int = field(32, gt=0, doc="parallel envs")
    unroll_length: int = field(64, gt=0, doc="env steps per env per iteration")
    num_minibatches: int = field(16, gt=0, doc="minibatches per epoch; must divide num_envs*unroll_length")
    q: QNet = field(
        default_factory=lambda: QNet(hidden=(256, 256), activation="relu", norm="layer", kernel_init="lecun_normal"),
        doc="Q-network (scalar values: mse or huber)",
    )
    optimizer: str = field("radam", choices=("radam", "adam"), doc="RAdam (the authors') or Adam")
    lr_schedule: str = field("linear", choices=("constant", "linear"), doc="linear: anneal to 0")
    adam_eps: float = field(1e-8, gt=0)
    # Traced
    learning_rate: float = field(1e-4, traced=True, gt=0)
    max_grad_norm: float | None = field(10.0, traced=True, gt=0, doc="global gradient-norm clip (null: none)")
    gamma: float = field(0.99, traced=True, ge=0, le=1, doc="discount")
    q_lambda: float = field(0.95, traced=True, ge=0, le=1, doc="lambda of the Q(lambda) targets")
    reward_scaling: float = field(0.1, traced=True, gt=0, doc="rewards are multiplied by this")
    epsilon_start: float = field(1.0, traced=True, ge=0, le=1)
    epsilon_end: float = field(0.2, traced=True, ge=0, le=1)
    exploration_fraction: float = field(0.2, traced=True, gt=0, le=1, doc="fraction of the run to anneal epsilon")

    def check(self) -> None:
        common.check_network(self.q, "agent.q.", dropout=False)
        if self.q.value not in ("mse", "huber"):
            raise ConfigError(
                f"agent.q.value: PQN's Q(lambda) targets are scalars; use mse or huber; got {self.q.value}"
            )
        super().check()


State = common.RolloutState  # params: the Q-network


@struct.dataclass
class Batch:
    """Flat ``[batch, ...]`` samples: (normalized) observations, actions taken, Q(lambda) targets."""

    obs: jax.Array
    action: jax.Array
    target: jax.Array


def steps_per_iteration(config: Config) -> int:
    return config.num_envs * config.unroll_length


def _network(config: Config, env: Env) -> Model:
    """The Q-network: ``[..., num_actions]`` values."""
    return Model(MLP(config.q, (env.action_space.n,), len(env.observation_shape), dueling=config.q.dueling))


def _prepare_obs(config: Config, obs_stats: RunningStats, obs: jax.Array) -> jax.Array:
    return common.network_obs(config, obs_stats, obs)


def _optimizer(config: Config, hparams: common.Hyperparams, learning_rate: Any) -> optax.GradientTransformation:
    return common.optimizer(
        learning_rate, hparams.get("max_grad_norm"), config.adam_eps, rectified=config.optimizer == "radam"
    )


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    key, net_key, env_key = jax.random.split(key, 3)
    params, _ = _network(config, env).init(net_key, common.dummy_obs(env))
    hparams = common.Hyperparams.from_config(config)
    opt_state = _optimizer(config, hparams, 1.0).init(params)
    return common.start_rollout(
        config, env, env_key, total_iterations, params=params, opt_state=opt_state, hparams=hparams, key=key
    )


def td_loss(rep: values.Scalar, q_values: jax.Array, action: jax.Array, target: jax.Array) -> jax.Array:
    """Mean over the batch of the scalar representation's loss (``0.5 (Q(s, a) - G)^2``, or Huber) for values
    ``[batch, num_actions]`` and targets ``[batch]``."""
    taken = jnp.take_along_axis(q_values, action[:, None], axis=-1)  # [batch, 1]: one output per value
    return jnp.mean(rep.loss(taken, target))


def make_batch(config: Config, env: Env, state: State, transitions: Any) -> Batch:
    """Q(lambda) targets of a time-major rollout, flattened over time and envs."""
    hp, net = state.hparams, _network(config, env)
    next_values = jnp.max(net.apply(state.params, _prepare_obs(config, state.obs_stats, transitions.next_obs)), -1)
    targets = q_lambda_returns(
        transitions.reward * hp.reward_scaling,
        next_values,
        transitions.terminated,
        transitions.truncated,
        hp.gamma,
        hp.q_lambda,
    )
    batch = Batch(_prepare_obs(config, state.obs_stats, transitions.obs), transitions.action, targets)
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: epsilon-greedy rollout, Q(lambda) targets, minibatch epochs; then the observation
    statistics take in the rollout."""
    hp, net = state.hparams, _network(config, env)
    eps = common.epsilon(state)

    def explore(obs, starts, carry, key):
        q_values = net.apply(state.params, _prepare_obs(config, state.obs_stats, obs))
        return PolicyStep(common.epsilon_greedy(q_values, eps, key), {}, carry)

    out = unroll(training_env(env, config.num_envs), explore, state.env_step, (), state.key, config.unroll_length)
    state = state.replace(env_step=out.env_step, key=out.key)
    batch = make_batch(config, env, state, out.transitions)

    learning_rate = hp.learning_rate * (1.0 - common.progress(state) if config.lr_schedule == "linear" else 1.0)
    optimizer = _optimizer(config, hp, learning_rate)

    def gradient_step(params, opt_state, minibatch, key):
        def objective(params):
            q_values = net.apply(params, minibatch.obs)
            return td_loss(values.from_section(config.q), q_values, minibatch.action, minibatch.target), q_values

        (loss, q_values), grads = jax.value_and_grad(objective, has_aux=True)(params)
        params, opt_state = common.optimizer_step(optimizer, grads, opt_state, params)
        return params, opt_state, {"loss": loss, "q_mean": jnp.mean(q_values), "grad_norm": optax.global_norm(grads)}

    params, opt_state, key, metrics = common.minibatch_epochs(
        gradient_step, state.params, state.opt_state, state.key, batch, config.num_epochs, config.num_minibatches
    )
    state = state.replace(params=params, opt_state=opt_state, key=key, iteration=state.iteration + 1)
    if config.normalize_observations:
        state = state.replace(obs_stats=update_stats(state.obs_stats, out.transitions.obs))
    metrics = {**metrics, "epsilon": eps, "learning_rate": learning_rate, "target_mean": jnp.mean(batch.target)}
    return state, {**metrics, **out.totals.metrics()}


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Greedy actions (``deterministic``), else epsilon-greedy with ``epsilon_end``."""
    eps = jnp.where(deterministic, 0.0, state.hparams.epsilon_end)
    q_values = _network(config, env).apply(state.params, _prepare_obs(config, state.obs_stats, obs))
    return common.epsilon_greedy(q_values, eps, key)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``max_a Q(obs, a)`` for raw observations (in units of the scaled rewards)."""
    q_values = _network(config, env).apply(state.params, _prepare_obs(config, state.obs_stats, obs))
    return jnp.max(q_values, axis=-1)
