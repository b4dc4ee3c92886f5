"""Iterated DQN, i-DQN (Vincent et al. 2025, "Iterated Q-Network: Beyond One-Step Bellman Updates in Deep RL"):
``K`` online Q-networks learn ``K`` consecutive Bellman iterations at once. Head ``k`` regresses onto
``r + gamma max_a' Qbar_{k-1}(s', a')``, where ``Qbar_{k-1}`` is a frozen copy of head ``k-1`` (``Qbar_0`` of the
head that was first before the last rolling step), so head ``k`` learns ``Gamma^k`` of the frozen start. The
heads are separate networks stored along one leading axis and updated in one vmapped step (each its own Adam).

Every ``target_sync_period`` gradient steps the copies catch up, ``Qbar_k <- Q_k`` for ``k = 1..K-1``
(``Qbar_0`` stays); every ``rolling_period`` steps the window moves one iteration on: ``Qbar_{k-1} <- Q_k`` for
all heads, then ``Q_k <- Q_{k+1}`` (the last head keeps its weights, so it starts equal to the one before it).
Actions: epsilon-greedy with respect to one head drawn uniformly at every env step. Squared TD error, no double
Q. With ``K = 1`` this is DQN with hard target copies every ``rolling_period`` steps. Defaults: the authors'
Lunar Lander settings of their code (theovincent/i-DQN, main branch: K 3, D 10, T 200 gradient steps).

Differences from the authors' code: ``act`` with ``deterministic`` is greedy (epsilon 0) for the drawn head
(they report training returns); any value representation (``agent.q.value``; theirs is L2) through the shared
``rep.target``/``rep.loss``; the gradient-norm clip (``max_grad_norm``, off by default) is per head; prioritized
replay (``agent.replay``, not in the paper) weights every head's loss and ranks a transition by the heads' mean error
(PAL, ``replay: pal``, weights every head's loss by that error's priority over the batch mean).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from rlx.algos import common, dqn, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import QNet
from rlx.ops import values

DESCRIPTION = "i-DQN: K online Q-networks learn K consecutive Bellman iterations at once, rolling targets"
ACTION_SPACES = ("discrete",)


@dataclasses.dataclass(frozen=True)
class Config(dqn.QLearningConfig):
    """i-DQN hyperparameters: DQN's Q-learning ones plus the number of iterations and the two periods."""

    PRIORITIZED_REPLAY: ClassVar[bool] = True  # every head's loss weighted; the heads' mean error the priority
    PAL: ClassVar[bool] = True  # every head's loss weighted by loss_weights of the heads' mean error

    q: QNet = field(
        default_factory=lambda: QNet(hidden=(100, 100), activation="relu", kernel_init="lecun_normal", value="mse"),
        doc="each head's Q-network and its value representation",
    )
    iterations: int = field(3, gt=0, doc="K: online Q-networks, one per Bellman iteration")
    target_sync_period: int = field(10, gt=0, doc="D: gradient steps between Qbar_k <- Q_k (k = 1..K-1)")
    rolling_period: int = field(200, gt=0, doc="T: gradient steps between rolling steps (the window moves on)")
    adam_eps: float = field(1e-8, gt=0)
    learning_rate: float = field(3e-4, traced=True, gt=0)
    max_grad_norm: float | None = field(None, traced=True, gt=0, doc="per-head gradient-norm clip (null: none)")

    def check(self) -> None:
        super().check()
        if self.q.dueling:
            raise ConfigError("agent.q.dueling: i-DQN's heads are plain Q-networks; got true")
        if self.q.dropout > 0:  # it was accepted and never applied
            raise ConfigError(f"agent.q.dropout: must be 0 (i-DQN's heads are deterministic); got {self.q.dropout:g}")


Params = dqn.Params  # online and target: [K, ...] stacked networks
State = dqn.State
steps_per_iteration = off_policy.steps_per_iteration


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    """``K`` independently initialized heads; the frozen copies start equal to them."""
    net, _ = dqn._network(config, env)
    hparams = common.Hyperparams.from_config(config)

    def heads(key):
        return jax.vmap(lambda k: net.init(k, common.dummy_obs(env))[0])(jax.random.split(key, config.iterations))

    return dqn.init_with(config, env, key, total_iterations, heads, jax.vmap(dqn._optimizer(config, hparams).init))


def iterated_td_losses(
    rep: values.ValueRep,
    online_out: jax.Array,
    target_next_out: jax.Array,
    action: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Per-head per-sample loss ``[K, batch]`` for outputs ``[K, batch, num_actions, O]``: head ``k`` against the
    target of frozen copy ``k`` at the bootstrap state (its greedy action, no double Q); and the error ``[batch]``
    prioritized replay ranks samples by: the heads' mean of :func:`values.priority_error` (the loss sums the heads,
    so every head's error counts)."""

    def head(out, next_out):
        return dqn.td_loss_and_error(rep, out, next_out, next_out, action, returns, discount)

    losses, errors = jax.vmap(head)(online_out, target_next_out)
    return losses, jnp.mean(errors, axis=0)


def sync(params: Params) -> Params:
    """``Qbar_k <- Q_k`` for ``k = 1..K-1``: frozen copy ``i`` takes online head ``i - 1`` for ``i >= 1``."""
    target = jax.tree.map(lambda t, o: t.at[1:].set(o[:-1]), params.target, params.online)
    return params.replace(target=target)


def roll(params: Params) -> Params:
    """The rolling step: every frozen copy takes the online head of its index (``Qbar_{k-1} <- Q_k``), then the
    online heads move down one place (``Q_k <- Q_{k+1}``; the last keeps its weights)."""
    online = jax.tree.map(lambda o: jnp.concatenate([o[1:], o[-1:]]), params.online)
    return Params(online=online, target=params.online)


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """One vmapped update of the ``K`` heads, then the sync or rolling step when due."""
    del key  # no dropout: i-DQN's heads are deterministic networks
    hp, params = state.hparams, state.params
    net, rep = dqn._network(config, env)
    apply = jax.vmap(net.apply, in_axes=(0, None))
    target_next = apply(params.target, batch.next_obs)

    def objective(online_params):
        out = apply(online_params, batch.obs)
        per_sample, error = iterated_td_losses(rep, out, target_next, batch.action, batch.returns, batch.discount)
        losses = values.weighted_mean(per_sample, off_policy.loss_weights(config, state, batch, error), axis=-1)
        return jnp.sum(losses), (losses, out, error)

    (_, (losses, out, error)), grads = jax.value_and_grad(objective, has_aux=True)(params.online)
    state = off_policy.set_priorities(config, state, batch, error)
    tx = dqn._optimizer(config, hp)
    online, opt_state = jax.vmap(lambda g, s, p: common.optimizer_step(tx, g, s, p))(
        grads, state.opt_state, params.online
    )
    num_updates = state.num_updates + 1
    params = params.replace(online=online)
    rolled, synced = roll(params), sync(params)
    due_roll = num_updates % config.rolling_period == 0
    due_sync = num_updates % config.target_sync_period == 0
    params = jax.tree.map(lambda r, s, p: jnp.where(due_roll, r, jnp.where(due_sync, s, p)), rolled, synced, params)
    metrics = {
        "loss": jnp.sum(losses),
        "loss_first_head": losses[0],
        "loss_last_head": losses[-1],
        "q_mean": jnp.mean(rep.decode(out)),
        "grad_norm": optax.global_norm(grads),
    }
    return state.replace(params=params, opt_state=opt_state, num_updates=num_updates), metrics


def _head_greedy(config: Config, env: Env, online: Any, obs: jax.Array, eps: jax.Array, key: jax.Array) -> jax.Array:
    """Epsilon-greedy actions ``[B]`` with respect to one head drawn uniformly per observation."""
    net, rep = dqn._network(config, env)
    q = rep.decode(jax.vmap(net.apply, in_axes=(0, None))(online, obs))  # [K, B, A]
    head_key, action_key = jax.random.split(key)
    heads = jax.random.randint(head_key, obs.shape[:1], 0, config.iterations)
    q_drawn = jnp.take_along_axis(q, heads[None, :, None], axis=0)[0]
    return common.epsilon_greedy(q_drawn, eps, action_key)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: epsilon-greedy collection (a uniformly drawn head per step), then the gradient steps."""
    return dqn.epsilon_greedy_iteration(config, env, state, _head_greedy, gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Greedy actions of a drawn head (``deterministic``), else epsilon-greedy with ``epsilon_end``."""
    return dqn.act_with(_head_greedy, config, env, state, obs, key, deterministic)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """The heads' mean of ``max_a Q_k(obs, a)`` for raw observations."""
    net, rep = dqn._network(config, env)
    q = rep.decode(
        jax.vmap(net.apply, in_axes=(0, None))(state.params.online, off_policy.prepare_obs(config, state, obs))
    )
    return jnp.mean(jnp.max(q, axis=-1), axis=0)
