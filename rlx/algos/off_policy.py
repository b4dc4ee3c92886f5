"""The loop shared by off-policy algorithms (SAC, TD3/DDPG, DQN/C51): collect into a replay buffer that
lives in the train state, then take gradient steps on uniform samples turned into n-step TD batches.

One iteration collects ``rollout_length`` steps from each of ``num_envs`` envs (``rlx.rollout.unroll``),
i.e. ``num_envs * rollout_length`` transitions, then takes ``utd_ratio`` gradient steps per collected
transition, so ``utd_ratio`` means the same for 1 env or 4,096. Until ``learning_starts`` transitions
have been collected, actions are uniformly random (if ``random_warmup``) and no gradient step is taken.

An algorithm provides ``explore(obs, starts, carry, key) -> PolicyStep`` (normalized observations; its
``extras`` are stored with each transition and its ``carry`` lives in ``state.loop.explore_carry``) and
``gradient_step(config, env, state, batch, key)`` on a :class:`Batch`. States using this loop have the
fields ``loop`` (a :class:`LoopState`), ``key``, ``iteration`` and ``hparams``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from rlx import nets
from rlx.algos import common
from rlx.buffers import PrioritizedReplayBuffer, ReplayBuffer, importance_weights
from rlx.config import ConfigError, field
from rlx.envs import Env, EnvStep, training_env
from rlx.nets import MLP, CriticNet, Ensemble, Model
from rlx.nets.spec import network_input
from rlx.ops import values
from rlx.ops.distributions import Bernoulli
from rlx.ops.normalization import (
    ReturnScale,
    RunningStats,
    init_return_scale,
    init_stats,
    reward_scale,
    update_return_scale,
    update_stats,
)
from rlx.ops.returns import n_step_return
from rlx.ops.td import temperature_loss
from rlx.rollout import Policy, PolicyStep, Transition, unroll


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(common.ObservationNormalization):
    """Fields of the collect-and-replay loop every off-policy algorithm has."""

    # Static
    num_envs: int = field(1, gt=0, doc="parallel envs")
    rollout_length: int = field(1, gt=0, doc="env steps per env per iteration")
    utd_ratio: float = field(1.0, gt=0, doc="gradient steps per collected transition")
    batch_size: int = field(256, gt=0, doc="transitions per gradient step")
    buffer_size: int = field(1_000_000, gt=0, doc="replay capacity in transitions (split evenly over envs)")
    learning_starts: int = field(5_000, ge=0, doc="transitions collected before the first gradient step")
    random_warmup: bool = field(True, doc="uniformly random actions until learning_starts")
    obs_norm_update: str = field(
        "collected",
        choices=("collected", "collected_and_sampled"),
        doc="normalize_observations: statistics of the collected observations; collected_and_sampled also merges "
        "each sampled batch's observations, then its bootstrap ones, before normalizing each (FastTD3's code)",
        read_with={"normalize_observations": (True,)},
    )
    obs_norm_before_acting: bool = field(
        False,
        doc="normalize_observations: merge each vector step's observations into the statistics before the policy "
        "acts on them (FastTD3's code), each once (none at init); false: a rollout's observations after it",
        read_with={"normalize_observations": (True,)},
    )
    normalize_rewards: bool = field(
        False, doc="divide sampled rewards by a running scale of the discounted return (SimbaV2's reward scaling)"
    )
    normalized_return_max: float = field(
        5.0,
        gt=0,
        doc="normalize_rewards: the scale is at least max|G| / this (SimbaV2's G_max, its support edge)",
        read_with={"normalize_rewards": (True,)},
    )
    n_step: int = field(1, gt=0, doc="steps of real reward before bootstrapping (stops at an episode end)")
    replay: str = field(
        "uniform",
        choices=("uniform", "prioritized", "pal"),
        doc="how batches are drawn: uniformly, or proportionally to priorities (Schaul et al. 2016); pal: uniformly, "
        "each sample's loss weighted by the priority it would have over the batch's mean (PAL, Fujimoto et al. 2020)",
    )
    adam_eps: float = field(1e-8, gt=0)
    adam_b1: float = field(0.9, ge=0, lt=1, doc="Adam's first-moment decay (CrossQ: 0.5)")
    reset: tuple[str, ...] = field(
        (), doc="networks re-initialized every reset_every gradient steps (the algorithm's RESETTABLE names)"
    )
    reset_every: int = field(0, ge=0, doc="gradient steps between resets of the reset networks (0: never)")
    # Traced
    gamma: float = field(0.99, traced=True, ge=0, le=1, doc="discount")
    reward_scaling: float = field(1.0, traced=True, gt=0, doc="rewards are multiplied by this")
    max_grad_norm: float | None = field(
        None, traced=True, gt=0, doc="global gradient-norm clip per network (null: none)"
    )
    weight_decay: float | None = field(
        None, traced=True, gt=0, doc="decoupled weight decay of the networks, AdamW (null: none; FastTD3: 0.1)"
    )
    priority_exponent: float = field(
        0.6,
        traced=True,
        ge=0,
        le=1,
        doc="alpha: a drawn transition's priority is (its TD error or loss + priority_eps)^alpha (0: uniform)",
        read_with={"replay": ("prioritized", "pal")},
    )
    priority_eps: float = field(
        1e-6, traced=True, gt=0, doc="added before the exponent", read_with={"replay": ("prioritized", "pal")}
    )
    priority_floor: float | None = field(
        None,
        traced=True,
        gt=0,
        doc="errors below it count as it (LAP, Fujimoto et al. 2020: 1, with a Huber loss and importance exponents 0; "
        "null: none; pal needs it)",
        read_with={"replay": ("prioritized", "pal")},
    )
    importance_exponent_start: float = field(
        0.4,
        traced=True,
        ge=0,
        le=1,
        doc="beta at the start: losses are weighted by (min P / P)^beta, beta annealed linearly over the run",
        read_with={"replay": ("prioritized",)},
    )
    importance_exponent_end: float = field(
        1.0, traced=True, ge=0, le=1, doc="beta at the end of the run", read_with={"replay": ("prioritized",)}
    )

    # name -> the state paths a reset replaces with freshly initialized values (targets, optimizer states and
    # batch statistics go with their network); set by each algorithm
    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {}
    # whether the algorithm's gradient step weights its loss by Batch.weights and sets the drawn transitions'
    # priorities (set_priorities), so that replay: prioritized is allowed; its state must have total_iterations
    PRIORITIZED_REPLAY: ClassVar[bool] = False
    # whether its loss is weighted by loss_weights (through critic_loss_and_error or batch_loss), so that
    # replay: pal is allowed
    PAL: ClassVar[bool] = False

    @property
    def transitions_per_iteration(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def updates_per_iteration(self) -> int:
        return round(self.transitions_per_iteration * self.utd_ratio)

    @property
    def merges_sampled_observations(self) -> bool:
        """Whether sampled batches update the observation statistics (``obs_norm_update: collected_and_sampled``)."""
        return self.normalize_observations and self.obs_norm_update == "collected_and_sampled"

    @property
    def first_update_iteration(self) -> int:
        """The first iteration (0-based) that takes gradient steps: the one whose collect reaches
        ``learning_starts`` transitions."""
        return max(0, -(-self.learning_starts // self.transitions_per_iteration) - 1)

    def plan_notes(self, num_iterations: int) -> list[str]:
        """What a run of ``num_iterations`` iterations does not do that its config may suggest (accepted: an
        extension can still get there)."""
        total = int(gradient_steps_before(self, num_iterations))
        notes = []
        if total == 0:
            notes.append(
                f"agent.learning_starts={self.learning_starts} is more than the run's "
                f"{num_iterations * self.transitions_per_iteration} transitions: no gradient step is taken"
            )
        elif self.reset and total < self.reset_every:
            notes.append(
                f"agent.reset_every={self.reset_every} is more than the run's {total} gradient steps: no reset happens"
            )
        elif self.reset and total % self.reset_every == 0:
            notes.append(
                f"agent.reset_every={self.reset_every}: the last reset of {', '.join(self.reset)} follows the run's "
                f"last gradient step ({total}), so the final state and evaluation have them freshly initialized"
            )
        return notes

    def check(self) -> None:
        super().check()
        exact = self.transitions_per_iteration * self.utd_ratio
        if self.updates_per_iteration < 1 or abs(exact - self.updates_per_iteration) > 1e-6:
            raise ConfigError(
                f"agent.utd_ratio: num_envs*rollout_length*utd_ratio = {exact:g} must be a whole number >= 1 "
                f"(gradient steps per iteration); got utd_ratio={self.utd_ratio:g}"
            )
        if self.buffer_size < self.transitions_per_iteration:
            raise ConfigError(
                f"agent.buffer_size: must hold at least one iteration's num_envs*rollout_length = "
                f"{self.transitions_per_iteration} transitions; got {self.buffer_size}"
            )
        if self.buffer_size // self.num_envs < self.n_step:
            raise ConfigError(
                f"agent.buffer_size: must hold {self.n_step} transitions per env ({self.num_envs} envs); got {self.buffer_size}"
            )
        first = (self.first_update_iteration + 1) * self.transitions_per_iteration  # stored at the first update
        if first < self.num_envs * self.n_step:  # the first samples were runs of empty slots
            raise ConfigError(
                f"agent.learning_starts: n-step returns sample runs of {self.n_step} steps of one env, so training "
                f"must start after num_envs*n_step = {self.num_envs * self.n_step} transitions or more; "
                f"learning_starts={self.learning_starts} starts it after {first}"
            )
        if self.replay == "prioritized" and not self.PRIORITIZED_REPLAY:
            raise ConfigError(
                "agent.replay: this algorithm's gradient step sets no priorities, so it allows uniform only; got "
                "prioritized"
            )
        if self.replay == "pal" and not self.PAL:
            raise ConfigError(
                "agent.replay: this algorithm's loss takes no PAL weights, so it allows uniform or prioritized; got pal"
            )
        if self.replay == "pal" and self.priority_floor is None:
            raise ConfigError("agent.priority_floor: replay pal needs a floor > 0 (Fujimoto et al.: 1); got null")
        unknown = [name for name in self.reset if name not in self.RESETTABLE]
        if unknown:
            allowed = ", ".join(self.RESETTABLE) or "none for this algorithm"
            raise ConfigError(f"agent.reset: unknown network {unknown[0]!r}; allowed: {allowed}")
        if bool(self.reset) != (self.reset_every > 0):
            raise ConfigError(
                f"agent.reset_every: set it (> 0) together with agent.reset (networks to reset); got "
                f"reset_every={self.reset_every}, reset={list(self.reset)}"
            )
        if self.reset_every % self.updates_per_iteration:
            raise ConfigError(
                f"agent.reset_every: must be a multiple of the {self.updates_per_iteration} gradient steps per "
                f"iteration (resets happen between iterations); got {self.reset_every}"
            )


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(OffPolicyConfig):
    """The loop's fields plus those of an actor and an ensemble of Polyak-averaged critics (SAC, TD3).
    Subclasses add ``actor`` (their network section)."""

    critic: CriticNet = field(
        default_factory=lambda: CriticNet(hidden=(256, 256), activation="relu"),
        doc="Q-network and its value representation",
    )
    num_critics: int = field(2, gt=0, doc="Q-networks; the target takes the lowest")
    tau: float = field(0.005, traced=True, gt=0, le=1, doc="Polyak rate of the target networks")
    actor_learning_rate: float = field(3e-4, traced=True, gt=0)
    critic_learning_rate: float = field(3e-4, traced=True, gt=0)

    MOVED: ClassVar[dict[str, str]] = {
        "actor_hidden": "actor.hidden",
        "critic_hidden": "critic.hidden",
        "activation": "actor.activation (and critic.activation)",
    }
    PRIORITIZED_REPLAY: ClassVar[bool] = True  # the critics' loss weighted; the larger member error the priority
    PAL: ClassVar[bool] = True  # through critic_loss_and_error


@dataclasses.dataclass(frozen=True)
class TemperatureConfig:
    """The entropy temperature of maximum-entropy actor-critics (SAC, CrossQ)."""

    autotune_alpha: bool = field(True, doc="learn alpha toward target_entropy; else keep initial_alpha")
    target_entropy: float | None = field(
        None, doc="default target_entropy_per_dim * |A|", read_with={"autotune_alpha": (True,)}
    )
    target_entropy_per_dim: float = field(
        -1.0,
        doc="the default target entropy per action dimension (SimbaV2: -0.5)",
        read_with={"autotune_alpha": (True,), "target_entropy": (None,)},
    )
    initial_alpha: float = field(1.0, traced=True, gt=0, doc="temperature at the start (fixed if not autotuned)")
    alpha_learning_rate: float = field(3e-4, traced=True, gt=0, read_with={"autotune_alpha": (True,)})

    def read_only_at_start(self) -> dict[str, str]:
        """Traced fields read only when the state is made, and why (population-based training refuses to perturb
        them; a sweep may vary them)."""
        if not self.autotune_alpha:
            return {}
        return {"initial_alpha": "with autotune_alpha: true it is read once, as the learned temperature's start"}


@struct.dataclass
class LoopState:
    """What the collect-and-replay loop keeps in an algorithm's train state."""

    env_step: EnvStep  # [num_envs] current envs, after auto-reset
    buffer: Any  # the replay buffer's state (rlx.buffers)
    obs_stats: RunningStats  # observation statistics (updated only with normalize_observations)
    explore_carry: Any  # the behaviour policy's carry (() when it has none)
    return_scale: ReturnScale  # discounted-return statistics (updated only with normalize_rewards)


@struct.dataclass(kw_only=True)
class ActorCriticState:
    """The train state of an actor-critic on this loop (SAC and TD3; CrossQ adds batch statistics):
    everything a run needs to continue bit for bit, replay buffer included."""

    params: Any  # the algorithm's Params: networks (and target copies, log alpha)
    opt_state: Any  # the algorithm's optimizer states, one per learned part
    loop: LoopState  # envs, replay buffer, observation statistics
    key: jax.Array
    iteration: jax.Array
    num_updates: jax.Array  # int32, gradient steps taken (for the policy delay)
    hparams: common.Hyperparams
    # int32, the run's length where a schedule reads it (SimbaV2's decay, consistency AC's epsilon, prioritized
    # replay's beta), else None: states without a schedule keep the structure their older checkpoints have
    total_iterations: jax.Array | None = None


@struct.dataclass
class Batch:
    """A TD batch ``[batch, ...]``: the target is ``returns + discount * V(next_obs)``. With ``n_step`` > 1,
    ``returns`` sums the discounted rewards of up to n transitions, stopping at the first episode end;
    ``discount`` is ``gamma^m`` (m transitions used), or 0 if the last one terminated; ``next_obs`` is the
    observation to bootstrap from (the final one of a truncated episode). Rewards are multiplied by
    ``reward_scaling`` and, with ``normalize_rewards``, divided by the current return scale (the batch is
    sampled raw and scaled with the statistics of now, as observations are). Observations are normalized;
    ``extras`` are those stored with the first transition. ``obs_stats``: the observation statistics after
    this batch (with ``obs_norm_update: collected_and_sampled`` they merged its observations, then its
    bootstrap observations, each before normalizing them). With ``replay: prioritized``, ``weights`` and
    ``replay_index`` (see :func:`weighted_mean` and :func:`set_priorities`)."""

    obs: jax.Array
    action: jax.Array
    returns: jax.Array  # reward_scaling (and normalize_rewards) applied
    discount: jax.Array
    next_obs: jax.Array
    extras: dict
    obs_stats: Any = None
    weights: jax.Array | None = None  # replay: prioritized: importance-sampling weights [batch] of the losses
    replay_index: jax.Array | None = None  # replay: prioritized: the drawn start positions [batch]


def temperature_optimizer(config: Any, learning_rate: Any):
    """Plain Adam for ``log alpha`` (no clipping; the temperature's b1 stays 0.9, as in CrossQ's code)."""
    return common.optimizer(learning_rate, eps=config.adam_eps)


def with_fixed_temperature(config: Any, hparams: common.Hyperparams, params: Any) -> Any:
    """``params`` whose ``log_alpha`` is the traced ``initial_alpha``'s log when ``autotune_alpha`` is off: the
    fixed temperature follows the train state's hyperparameters (a population step's new value takes effect at
    once), and is the value init stored until one changes it."""
    return params if config.autotune_alpha else params.replace(log_alpha=jnp.log(hparams.initial_alpha))


def temperature_step(
    config: Any,
    env: Env,
    hparams: common.Hyperparams,
    log_alpha: jax.Array,
    opt_state: Any,
    log_prob: jax.Array,
    learning_rate: Any = None,
) -> tuple[jax.Array, Any, dict]:
    """``(log_alpha, opt_state, metrics)`` after one step of SAC's temperature loss toward the target entropy
    (``target_entropy_per_dim * |A|`` unless set; metrics: its ``alpha_loss``), or unchanged, without metrics,
    with ``autotune_alpha`` off (no target entropy is read then). The step size is ``alpha_learning_rate`` unless
    ``learning_rate`` is given (a schedule's current value)."""
    if not config.autotune_alpha:
        return log_alpha, opt_state, {}
    target = config.target_entropy
    if target is None:
        target = config.target_entropy_per_dim * float(env.action_space.shape[0])
    loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, log_prob, target)
    tx = temperature_optimizer(config, hparams.alpha_learning_rate if learning_rate is None else learning_rate)
    log_alpha, opt_state = common.optimizer_step(tx, grad, opt_state, log_alpha)
    return log_alpha, opt_state, {"alpha_loss": loss}


def actor_value(q: jax.Array, kind: str) -> jax.Array:
    """What an actor maximizes from its critics' values ``q`` ``[num_critics, batch]``: ``"first"`` critic's
    (TD3), the ``"min"`` (SAC, FastTD3) or the ``"mean"`` (REDQ, DroQ). Shape ``[batch]``."""
    if kind == "first":
        return q[0]
    return jnp.min(q, axis=0) if kind == "min" else jnp.mean(q, axis=0)


def delayed(
    period: int, num_updates: jax.Array, update: Callable[[Any], tuple[Any, dict]], current: Any
) -> tuple[Any, dict]:
    """``update(current) -> (new, metrics)`` on every ``period``-th gradient step (``num_updates`` taken before
    this one), else ``(current, zero metrics)``: the delayed actor updates of TD3, CrossQ and DroQ. ``period``
    1 calls ``update`` unconditionally, so an undelayed algorithm compiles to the same program as without it."""
    if period == 1:
        return update(current)
    due = (num_updates + 1) % period == 0

    def keep(current):
        metrics = jax.eval_shape(update, current)[1]
        return current, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics)

    return jax.lax.cond(due, update, keep, current)


def steps_per_iteration(config: OffPolicyConfig) -> int:
    return config.transitions_per_iteration


def replay_buffer(config: OffPolicyConfig) -> ReplayBuffer:
    kind = PrioritizedReplayBuffer if config.replay == "prioritized" else ReplayBuffer
    return kind(config.buffer_size, config.batch_size, config.num_envs, config.n_step)


def init_loop(
    config: OffPolicyConfig, env: Env, key: jax.Array, explore_carry: Any = (), extras_example: dict | None = None
) -> LoopState:
    """Fresh envs, an empty buffer and observation statistics; ``extras_example`` holds one env's explore
    extras (shapes and dtypes), if the algorithm stores any."""
    env_step = training_env(env, config.num_envs).reset(key)
    obs = jax.tree.map(lambda x: x[0], common.dummy_obs(env))  # one env's (zero) observation
    space = env.action_space
    action = jnp.zeros((), jnp.int32) if space.kind == "discrete" else jnp.zeros(space.shape, jnp.float32)
    example = Transition(
        obs, action, jnp.zeros(()), jnp.zeros((), bool), jnp.zeros((), bool), obs, extras_example or {}
    )
    stats = init_stats(env.observation_shape)
    if config.normalize_observations and not config.obs_norm_before_acting:
        stats = update_stats(stats, env_step.obs)
    return LoopState(
        env_step, replay_buffer(config).init(example), stats, explore_carry, init_return_scale(config.num_envs)
    )


def prepare_obs(config: OffPolicyConfig, state: Any, obs: jax.Array) -> jax.Array:
    """Raw observations as the networks see them (normalized with ``normalize_observations``)."""
    return common.network_obs(config, state.loop.obs_stats, obs)


def critic(config: ActorCriticConfig, env: Env) -> tuple[Model, values.ValueRep]:
    """The ensemble of ``num_critics`` Q-networks ``Q(s, a)`` and its value representation."""
    rep = values.from_section(config.critic)
    obs_ndim = len(network_input(config.critic, env.observation_shape))
    module = Ensemble(config.critic, (rep.num_outputs,), config.num_critics, obs_ndim)
    return Model(module), rep


def stochastic_actor(config: Any, env: Env) -> Model:
    """The ``agent.actor`` network of SAC-style methods: the parameters of a tanh-squashed Gaussian policy
    (or, where the method allows ``distribution: bernoulli``, one logit per action dimension)."""
    outputs = (nets.policy_outputs(env.action_space, config.actor),)
    branches = 2 if config.actor.architecture == "simbav2" else 1  # SimbaV2: separate mean and log-std heads
    obs_ndim = len(network_input(config.actor, env.observation_shape))
    return Model(MLP(config.actor, outputs, obs_ndim, branches=branches))


def check_sac_actor(section: Any, algo_name: str, bernoulli: bool = False) -> None:
    """One line if a SAC-style actor (``agent.actor``) is not one its loss can backpropagate through: a
    tanh-squashed Gaussian (reparameterized, with the tanh log-prob correction), or with ``bernoulli`` also a
    bang-bang Bernoulli."""
    allowed = ("gaussian", "bernoulli") if bernoulli else ("gaussian",)
    if section.distribution not in allowed:
        raise ConfigError(
            f"agent.actor.distribution: {algo_name} needs {' or '.join(allowed)} (actions it can backpropagate "
            f"through); got {section.distribution}"
        )
    if section.distribution == "bernoulli":
        return  # no squash
    if section.squash != "tanh":
        raise ConfigError(f"agent.actor.squash: {algo_name} needs tanh (its log-prob correction); got {section.squash}")


def actor_sample(dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(raw_action, log_prob)`` for an actor loss ``alpha log_prob - Q(s, action)``, both carrying the policy's
    gradient: a tanh-Gaussian's reparameterized sample and its log-prob, or a Bernoulli's straight-through
    sample and minus its analytic entropy (a sampled log-prob at a fixed discrete action has a zero-mean
    gradient, so it could not hold the entropy up). Shapes ``[..., d]`` and ``[...]``."""
    if isinstance(dist, Bernoulli):
        return dist.straight_through_sample(key), -dist.entropy()
    raw_action = dist.sample(key)
    return raw_action, dist.log_prob(raw_action)


def sample_from(distribution: Callable[[jax.Array], Any]) -> Policy:
    """The behaviour policy that samples ``distribution(obs)`` (a squashed Gaussian) in env-action units."""

    def sample(obs, starts, carry, key):
        dist = distribution(obs)
        return PolicyStep(dist.env_action(dist.sample(key)), {}, carry)

    return sample


def optimizer(config: OffPolicyConfig, hparams: common.Hyperparams, learning_rate: Any):
    """Adam with the run's ``adam_eps``, ``adam_b1``, and (when set) ``max_grad_norm`` clipping and
    ``weight_decay`` (AdamW)."""
    return common.optimizer(
        learning_rate,
        hparams.get("max_grad_norm"),
        config.adam_eps,
        b1=config.adam_b1,
        weight_decay=hparams.get("weight_decay"),
    )


def random_actions(env: Env, key: jax.Array, num: int) -> jax.Array:
    space = env.action_space
    if space.kind == "discrete":
        return jax.random.randint(key, (num,), 0, space.n)
    return jax.random.uniform(key, (num, *space.shape), minval=-1.0, maxval=1.0)


def clip_unit_box(action: jax.Array) -> jax.Array:
    return jnp.clip(action, -1.0, 1.0)


def transitions_collected(config: OffPolicyConfig, state: Any) -> jax.Array:
    return state.iteration * config.transitions_per_iteration


def collect(
    config: OffPolicyConfig, env: Env, state: Any, explore: Policy, warmup_actions: Callable | None = None
) -> tuple[Any, dict]:
    """Steps every env ``rollout_length`` times with ``explore`` (or random actions during warm-up:
    ``warmup_actions(key, num_envs)``, by default :func:`random_actions`) and adds the transitions to the buffer.
    Box actions reach the envs clipped to [-1, 1] and are stored as the policy chose them."""
    warmup = config.random_warmup & (transitions_collected(config, state) < config.learning_starts)
    warmup_actions = warmup_actions or (lambda key, num: random_actions(env, key, num))
    merge_before_acting = config.normalize_observations and config.obs_norm_before_acting

    def policy(obs, starts, carry, keys):
        explore_key, random_key = keys
        if merge_before_acting:  # the statistics ride in the unroll's carry beside the policy's own
            carry, stats = carry
            stats = update_stats(stats, obs)
            step = explore(common.network_obs(config, stats, obs), starts, carry, explore_key)
        else:
            step = explore(prepare_obs(config, state, obs), starts, carry, explore_key)
        action = jnp.where(warmup, warmup_actions(random_key, config.num_envs), step.action)
        return PolicyStep(action, step.extras, (step.carry, stats) if merge_before_acting else step.carry)

    loop = state.loop
    out = unroll(
        training_env(env, config.num_envs),
        policy,
        loop.env_step,
        (loop.explore_carry, loop.obs_stats) if merge_before_acting else loop.explore_carry,
        state.key,
        config.rollout_length,
        keys_per_step=2,
        env_action=clip_unit_box if env.action_space.kind == "box" else None,
    )
    transitions = out.transitions
    explore_carry, obs_stats = out.carry if merge_before_acting else (out.carry, loop.obs_stats)
    if config.normalize_observations and not merge_before_acting:
        obs_stats = update_stats(obs_stats, transitions.obs)
    scale, metrics = loop.return_scale, out.totals.metrics()
    if config.normalize_rewards:
        dones = transitions.terminated | transitions.truncated
        scale = update_return_scale(
            scale, transitions.reward * state.hparams.reward_scaling, dones, state.hparams.gamma
        )
        metrics["reward_scale"] = reward_scale(scale, config.normalized_return_max)
    buffer = replay_buffer(config).add_steps(loop.buffer, transitions)
    return state.replace(loop=LoopState(out.env_step, buffer, obs_stats, explore_carry, scale), key=out.key), metrics


def td_batch(config: OffPolicyConfig, state: Any, sample: Transition) -> Batch:
    """The :class:`Batch` of a buffer sample (single transitions, or runs of ``n_step``)."""
    hp = state.hparams
    reward = sample.reward * hp.reward_scaling
    if config.normalize_rewards:
        reward = reward / reward_scale(state.loop.return_scale, config.normalized_return_max)
    if config.n_step == 1:
        returns = reward
        discount = hp.gamma * (1.0 - sample.terminated.astype(returns.dtype))
        obs, action, next_obs, extras = sample.obs, sample.action, sample.next_obs, sample.extras
    else:
        returns, discount, last = n_step_return(reward, sample.terminated, sample.truncated, hp.gamma)

        def at_last(x):  # [batch, n, ...] -> [batch, ...] at each run's last transition used
            return jnp.take_along_axis(x, last.reshape((-1, 1) + (1,) * (x.ndim - 2)), axis=1)[:, 0]

        next_obs = jax.tree.map(at_last, sample.next_obs)  # dict observations: every entry
        first = jax.tree.map(lambda x: x[:, 0], (sample.obs, sample.action, sample.extras))
        obs, action, extras = first
    obs_stats = next_stats = state.loop.obs_stats
    if config.merges_sampled_observations:
        obs_stats = update_stats(obs_stats, obs)  # FastTD3's normalizer: merge each batch, then normalize it
        next_stats = update_stats(obs_stats, next_obs)
    return Batch(
        common.network_obs(config, obs_stats, obs),
        action,
        returns,
        discount,
        common.network_obs(config, next_stats, next_obs),
        extras,
        next_stats,
    )


def importance_exponent(state: Any) -> jax.Array:
    """beta, annealed linearly from ``importance_exponent_start`` to ``importance_exponent_end`` over the run
    (Schaul et al.: 0.4 to 1)."""
    hp = state.hparams
    return hp.importance_exponent_start + common.progress(state) * (
        hp.importance_exponent_end - hp.importance_exponent_start
    )


def schedule_length(config: OffPolicyConfig, total_iterations: int) -> jax.Array | None:
    """An actor-critic state's ``total_iterations``: the run's length (int32) with ``replay: prioritized``, whose
    beta is annealed over it, else None (see :class:`ActorCriticState`)."""
    return jnp.asarray(total_iterations, jnp.int32) if config.replay == "prioritized" else None


def sample_batch(config: OffPolicyConfig, state: Any, key: jax.Array) -> Batch:
    """A :class:`Batch` drawn from the replay buffer: uniformly (``replay: uniform`` or ``pal``), or with ``replay:
    prioritized`` proportionally to the priorities, with importance weights at the run's current beta and the
    drawn positions."""
    buffer = replay_buffer(config)
    if config.replay != "prioritized":
        return td_batch(config, state, buffer.sample(state.loop.buffer, key))
    drawn = buffer.sample_prioritized(state.loop.buffer, key)
    weights = importance_weights(drawn.probability, importance_exponent(state))
    return td_batch(config, state, drawn.items).replace(weights=weights, replay_index=drawn.index)


def priority(hparams: Any, error: jax.Array) -> jax.Array:
    """The priority of errors ``error`` (>= 0: the absolute TD error, or the per-sample loss of a distributional
    critic): ``(max(error, priority_floor) + priority_eps)^alpha``, the floor only where it is set (LAP)."""
    error = jax.lax.stop_gradient(error)
    floor = hparams.get("priority_floor")  # None (unset) leaves it out of hparams; compiled configs have it blanked
    if floor is not None:
        error = jnp.maximum(error, floor)
    return (error + hparams.priority_eps) ** hparams.priority_exponent


def loss_weights(config: OffPolicyConfig, state: Any, batch: Batch, errors: jax.Array) -> jax.Array | None:
    """What per-sample losses are weighted by, given the errors ``[..., batch]`` (ensemble members first): with
    ``replay: pal`` each error's :func:`priority` over the batch's mean priority of its largest member error (PAL,
    Fujimoto et al. 2020: on uniform draws, the expected gradient of prioritized draws without importance weights);
    otherwise ``batch.weights`` (importance weights, or None)."""
    if config.replay != "pal":
        return batch.weights
    largest = jnp.max(errors.reshape((-1, errors.shape[-1])), axis=0)
    return priority(state.hparams, errors) / jnp.mean(priority(state.hparams, largest))


def batch_loss(config: OffPolicyConfig, state: Any, batch: Batch, loss: jax.Array, error: jax.Array) -> jax.Array:
    """The batch's mean of per-sample ``loss [batch]``, weighted by :func:`loss_weights` of ``error [batch]``."""
    return values.weighted_mean(loss, loss_weights(config, state, batch, error))


def critic_loss_and_error(
    config: OffPolicyConfig, state: Any, batch: Batch, rep: values.ValueRep, outputs: jax.Array, target: Any
) -> tuple[jax.Array, jax.Array]:
    """An ensemble's critic loss and priority error (:func:`values.ensemble_loss_and_error`), each member's
    per-sample loss weighted by :func:`loss_weights` of its own error (as Fujimoto et al.'s PAL-TD3)."""
    per_sample, errors = values.ensemble_losses(rep, outputs, target)  # [K, batch] each
    weights = loss_weights(config, state, batch, errors)
    return jnp.sum(values.weighted_mean(per_sample, weights, axis=-1)), jnp.max(errors, axis=0)


def set_priorities(config: OffPolicyConfig, state: Any, batch: Batch, error: jax.Array) -> Any:
    """With ``replay: prioritized``, sets the priorities of the batch's transitions to the :func:`priority` of
    ``error [batch]``; otherwise ``state`` unchanged."""
    if config.replay != "prioritized":
        return state
    priorities = priority(state.hparams, error)
    buffer = replay_buffer(config).set_priorities(state.loop.buffer, batch.replay_index, priorities)
    return state.replace(loop=state.loop.replace(buffer=buffer))


def train_updates(
    config: OffPolicyConfig, state: Any, gradient_step: Callable[[Any, Batch, jax.Array], tuple[Any, dict]]
) -> tuple[Any, dict]:
    """``updates_per_iteration`` calls of ``gradient_step(state, batch, key)`` on fresh samples
    (:func:`sample_batch`), once ``learning_starts`` transitions were collected; metrics averaged, with
    ``gradient_steps`` (0 before: the chunk's means leave those iterations out)."""

    def one_update(state, _):
        key, sample_key, step_key = jax.random.split(state.key, 3)
        batch = sample_batch(config, state, sample_key)
        if config.merges_sampled_observations:
            state = state.replace(loop=state.loop.replace(obs_stats=batch.obs_stats))
        return gradient_step(state.replace(key=key), batch, step_key)

    def run(state):
        state, metrics = jax.lax.scan(one_update, state, None, length=config.updates_per_iteration)
        return state, {
            **jax.tree.map(jnp.mean, metrics),
            common.GRADIENT_STEPS: jnp.float32(config.updates_per_iteration),
        }

    metrics_shape = jax.eval_shape(run, state)[1]

    def skip(state):
        return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

    ready = transitions_collected(config, state) + config.transitions_per_iteration >= config.learning_starts
    return jax.lax.cond(ready, run, skip, state)


def gradient_steps_before(config: OffPolicyConfig, iteration: jax.Array) -> jax.Array:
    """Gradient steps taken before ``iteration`` (iterations train once ``learning_starts`` is reached)."""
    return jnp.maximum(iteration - config.first_update_iteration, 0) * config.updates_per_iteration


def _replace_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    return obj.replace(**{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})


def _get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name)
    return obj


def reset_networks(config: OffPolicyConfig, state: Any, fresh: Any) -> Any:
    """``state`` with the ``config.reset`` networks' paths (``RESETTABLE``) taken from ``fresh``; the replay
    buffer, envs, counters and all other networks are kept."""
    for name in config.reset:
        for path in config.RESETTABLE[name]:
            parts = tuple(path.split("."))
            state = _replace_path(state, parts, _get_path(fresh, parts))
    return state


def maybe_reset(config: OffPolicyConfig, env: Env, state: Any, init: Callable) -> Any:
    """After iteration ``state.iteration``'s gradient steps: re-initialize the ``reset`` networks if a
    multiple of ``reset_every`` gradient steps was reached in it (the primacy-bias remedy of Nikishin et
    al. 2022 and D'Oro et al. 2023). ``init(config, env, key, total_iterations)`` is the algorithm's, run with
    this run's traced hyperparameters and a key split from the state's."""
    if not config.reset:
        return state
    after = gradient_steps_before(config, state.iteration + 1)
    due = (after > 0) & (after % config.reset_every == 0)

    def reset(state):
        key, init_key = jax.random.split(state.key)
        traced = dataclasses.replace(config, **state.hparams.as_dict())
        return reset_networks(config, state.replace(key=key), init(traced, env, init_key, 1))

    return jax.lax.cond(due, reset, lambda state: state, state)


def train_iteration(
    config: OffPolicyConfig,
    env: Env,
    state: Any,
    explore: Policy,
    gradient_step: Callable[[Any, Env, Any, Batch, jax.Array], tuple[Any, dict]],
    init: Callable,
    warmup_actions: Callable | None = None,
) -> tuple[Any, dict]:
    """One iteration of an off-policy algorithm: :func:`collect` with ``explore`` (and ``warmup_actions``),
    then :func:`train_updates` with ``gradient_step(config, env, state, batch, key)``, then :func:`maybe_reset`
    (with the algorithm's ``init``), then count it."""
    state, episode_stats = collect(config, env, state, explore, warmup_actions)
    state, metrics = train_updates(config, state, lambda s, b, k: gradient_step(config, env, s, b, k))
    state = maybe_reset(config, env, state, init)
    return state.replace(iteration=state.iteration + 1), {**metrics, **episode_stats}
