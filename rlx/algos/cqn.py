"""CQN (Seo, Uruç and James 2024, "Continuous Control with Coarse-to-fine Reinforcement Learning"): value-based
continuous control. Every action dimension is discretized coarse to fine (``rlx.ops.coarse_to_fine``): at each
of ``levels`` levels the critic scores ``action_bins`` bins of the current interval and the greedy bin becomes
the next interval, so an action is a path of bin indices ``[levels, D]``. One critic serves all levels, told
the level and the centre of the interval it refines (``rlx.nets.coarse_to_fine``); dimensions are scored
independently (one distribution per dimension and bin), all against the same reward.

Each gradient step: the online critic picks the greedy path at ``s'``, the target critic evaluates it at every
level and dimension, and each level's output at the taken bin of the buffer action's path (its own intervals'
centres as inputs) learns the target of the same level; the loss is the mean over levels and dimensions of
``agent.q.value``'s loss (C51 cross-entropy in the paper). The target is Polyak-averaged after every step.
Exploration adds Gaussian noise to the greedy action; every executed action, warm-up ones included, is snapped
to the centre of its finest bin, so buffer actions encode exactly.

Defaults are the paper's DMC ones (``cfgs/config_dmc.yaml`` of the official code): 3 levels x 5 bins, C51 with
51 atoms on [0, 200], 2 x 512 LayerNorm SiLU layers after a 64-wide tanh observation trunk per stream, dueling,
Adam 1e-4, batch 256, 3-step returns, tau 0.02, one gradient step per 2 env steps, 2,000 uniformly random
steps first, noise std 0.1, random tie-break within 1e-4. Differences from the official (pixel-based) code:
observations are states, fed straight to each stream's trunk (as its RLBench agent's low-dimensional trunk);
hidden layers keep their bias before LayerNorm; the kernels' init is ``agent.q.kernel_init`` (orthogonal gain
sqrt 2 rather than 1, which LayerNorm makes nearly irrelevant); the Gaussian noise is not clipped to
``+-(1 - 1e-6)`` before snapping (snapping already maps anything beyond the bounds to the edge bins). Prioritized
replay (``agent.replay``, not in the paper) weights the loss and ranks a transition by its mean error over levels
and dimensions.
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
from rlx.nets import Model, QNet
from rlx.nets.coarse_to_fine import CoarseToFineQ
from rlx.ops import values
from rlx.ops.coarse_to_fine import (
    decode_action,
    encode_action,
    interval_centres,
    snap,
    tie_broken_argmax,
    zoom_in,
)
from rlx.rollout import PolicyStep

DESCRIPTION = "CQN: coarse-to-fine Q-network, continuous actions as greedy bins refined over levels (C51 critic)"
ACTION_SPACES = ("box",)


@dataclasses.dataclass(frozen=True)
class Config(off_policy.OffPolicyConfig):
    """CQN hyperparameters: the shared off-policy fields plus the critic, the discretization and exploration."""

    q: QNet = field(
        default_factory=lambda: QNet(
            hidden=(512, 512), activation="swish", norm="layer", value="c51", v_min=0.0, v_max=200.0, dueling=True
        ),
        doc="the critic shared by all levels: torso after each stream's trunk, value representation, dueling",
    )
    feature_dim: int = field(64, gt=0, doc="width of each stream's observation trunk (Dense -> LayerNorm -> tanh)")
    levels: int = field(3, gt=0, doc="refinements of each action dimension")
    action_bins: int = field(5, ge=2, doc="bins per level; actions form a grid of action_bins ** levels per dimension")
    rollout_length: int = field(2, gt=0, doc="env steps per env per iteration")
    utd_ratio: float = field(0.5, gt=0, doc="gradient steps per collected transition (paper: one per 2 env steps)")
    learning_starts: int = field(2_000, ge=0, doc="uniformly random transitions before the first gradient step")
    n_step: int = field(3, gt=0, doc="steps of real reward before bootstrapping (stops at an episode end)")
    # Traced
    learning_rate: float = field(1e-4, traced=True, gt=0)
    tau: float = field(0.02, traced=True, gt=0, le=1, doc="Polyak rate of the target critic, every gradient step")
    exploration_noise: float = field(0.1, traced=True, ge=0, doc="std of the Gaussian noise on greedy actions")
    tie_break: float = field(
        1e-4, traced=True, ge=0, doc="a dimension whose bins' values all lie within this picks a random bin"
    )

    # dqn.apply_gradients' target update: Polyak averaging after every gradient step, as the paper
    target_update: ClassVar[str] = "polyak"
    PRIORITIZED_REPLAY: ClassVar[bool] = True  # the loss weighted; the mean error over levels and dimensions
    PAL: ClassVar[bool] = True  # through batch_loss
    target_update_period: ClassVar[int] = 1
    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = dqn.Config.RESETTABLE

    def check(self) -> None:
        super().check()
        common.check_network(self.q, "agent.q.", dropout=False)
        if self.action_bins**self.levels > 2**24:  # float32 resolves no finer grid on [-1, 1]: a stored action's
            # bin path (learnt at, teacher forcing) would not be the path that chose it (tested to 2**24)
            raise ConfigError(
                f"agent.levels: action_bins ** levels must be <= 2**24 (the grid float32 actions resolve); got "
                f"{self.action_bins} ** {self.levels}"
            )
        if self.q.output_scale != 1.0:  # it was accepted and had no effect
            raise ConfigError(
                f"agent.q.output_scale: CQN's output layers start at zero (the authors'), so it must be 1; "
                f"got {self.q.output_scale:g}"
            )


Params = dqn.Params
State = dqn.State
steps_per_iteration = off_policy.steps_per_iteration


def _network(config: Config, env: Env) -> tuple[Model, values.ValueRep]:
    """The critic, ``(obs, centres [.., D], level [..]) -> [.., D, action_bins, O]``, and its representation."""
    rep = values.from_section(config.q)
    module = CoarseToFineQ(
        config.q, config.levels, config.action_bins, rep.num_outputs, config.feature_dim, len(env.observation_shape)
    )
    return Model(module), rep


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    net, _ = _network(config, env)
    dims = env.action_space.shape[0]
    example = (common.dummy_obs(env), jnp.zeros((1, dims)), jnp.zeros((1,), jnp.int32))
    return dqn.init_with(config, env, key, total_iterations, lambda k: net.init(k, *example)[0])


def path_outputs(net: Model, params: Any, obs: jax.Array, path: jax.Array, bins: int) -> jax.Array:
    """The critic's outputs ``[B, levels, D, O]`` at the bins of ``path [B, levels, D]``, each level given the
    centres of the path's own intervals (all levels in one batched call)."""
    batch, levels = path.shape[:2]
    level_obs = jnp.broadcast_to(obs[:, None], (batch, levels, *obs.shape[1:]))
    level = jnp.broadcast_to(jnp.arange(levels), (batch, levels))
    out = net.apply(params, level_obs, interval_centres(path, bins), level)  # [B, levels, D, bins, O]
    return jnp.take_along_axis(out, path[..., None, None], axis=-2)[..., 0, :]


def greedy_path(
    config: Config, env: Env, params: Any, obs: jax.Array, key: jax.Array, tie_break: jax.Array
) -> jax.Array:
    """The coarse-to-fine greedy path ``[B, levels, D]`` at ``obs [B, ...]``: per level and dimension the bin of
    highest value (``tie_break``: random where all are that close), then zoom into it."""
    net, rep = _network(config, env)
    low = -jnp.ones((obs.shape[0], env.action_space.shape[0]))
    high = -low
    path = []
    for level, level_key in enumerate(jax.random.split(key, config.levels)):
        out = net.apply(params, obs, (low + high) / 2, jnp.full(obs.shape[:1], level))
        index = tie_broken_argmax(rep.decode(out), level_key, tie_break)
        low, high = zoom_in(low, high, index, config.action_bins)
        path.append(index)
    return jnp.stack(path, axis=-2)


def td_loss_and_error(
    rep: values.ValueRep,
    online_taken: jax.Array,
    target_taken: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Per-sample loss ``[B]``: the mean over levels and dimensions of ``rep``'s loss between the online outputs
    at the taken bins ``[B, levels, D, O]`` and the target built, at the same level and dimension, from the
    target critic's outputs at the next greedy path ``[B, levels, D, O]`` with the sample's ``returns`` and
    ``discount`` ``[B]``; and the error ``[B]`` prioritized replay ranks samples by, the same mean of
    :func:`values.priority_error` (for a distributional critic the loss itself)."""
    shape = target_taken.shape[:-1]
    returns = jnp.broadcast_to(returns[:, None, None], shape)
    discount = jnp.broadcast_to(discount[:, None, None], shape)
    target = rep.target(target_taken, returns, discount)
    loss = rep.loss(online_taken, target)
    return jnp.mean(loss, axis=(1, 2)), jnp.mean(values.priority_error(rep, online_taken, target, loss), axis=(1, 2))


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """One critic update on ``batch`` (the online critic chooses the next path, the target critic values it),
    then the Polyak target update."""
    params, bins = state.params, config.action_bins
    net, rep = _network(config, env)
    next_path = greedy_path(config, env, params.online, batch.next_obs, key, state.hparams.tie_break)
    target_taken = path_outputs(net, params.target, batch.next_obs, next_path, bins)
    taken_path = encode_action(batch.action, config.levels, bins)

    def objective(online_params):
        taken = path_outputs(net, online_params, batch.obs, taken_path, bins)
        loss, error = td_loss_and_error(rep, taken, target_taken, batch.returns, batch.discount)
        return off_policy.batch_loss(config, state, batch, loss, error), (taken, error)

    (loss, (taken, error)), grads = jax.value_and_grad(objective, has_aux=True)(params.online)
    metrics = {"loss": loss, "q_mean": jnp.mean(rep.decode(taken)), "grad_norm": optax.global_norm(grads)}
    state = off_policy.set_priorities(config, state, batch, error)
    return dqn.apply_gradients(config, state, grads), metrics


def _action(config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, noise_std: jax.Array) -> jax.Array:
    """The greedy action at normalized ``obs`` plus Gaussian noise of ``noise_std``, snapped to the grid."""
    path_key, noise_key = jax.random.split(key)
    greedy = decode_action(
        greedy_path(config, env, state.params.online, obs, path_key, state.hparams.tie_break), config.action_bins
    )
    noisy = greedy + noise_std * jax.random.normal(noise_key, greedy.shape)
    return snap(noisy, config.levels, config.action_bins)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collection with noisy greedy actions (uniform ones during warm-up), then the gradient steps."""

    def explore(obs, starts, carry, key):
        return PolicyStep(_action(config, env, state, obs, key, state.hparams.exploration_noise), {}, carry)

    def warmup_actions(key, num):
        return snap(off_policy.random_actions(env, key, num), config.levels, config.action_bins)

    return off_policy.train_iteration(config, env, state, explore, gradient_step, init, warmup_actions)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """The greedy coarse-to-fine action (``deterministic``), else with the exploration noise."""
    noise_std = jnp.where(deterministic, 0.0, state.hparams.exploration_noise)
    return _action(config, env, state, off_policy.prepare_obs(config, state, obs), key, noise_std)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """The finest level's value at the greedy path, averaged over action dimensions, for raw observations (ties
    broken with a fixed key, so it is deterministic)."""
    norm_obs = off_policy.prepare_obs(config, state, obs)
    net, rep = _network(config, env)
    path = greedy_path(config, env, state.params.online, norm_obs, jax.random.PRNGKey(0), state.hparams.tie_break)
    return jnp.mean(rep.decode(path_outputs(net, state.params.online, norm_obs, path, config.action_bins))[:, -1], -1)
