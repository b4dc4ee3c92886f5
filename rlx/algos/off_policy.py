"""The loop shared by off-policy algorithms (SAC, TD3/DDPG, DQN/C51): collect into a replay buffer
living in the train state, then take a fixed number of gradient steps on uniform samples.

One iteration collects ``rollout_length`` steps from each of ``num_envs`` envs, i.e.
``num_envs * rollout_length`` transitions, then takes ``utd_ratio`` gradient steps per collected
transition, so ``utd_ratio`` means the same for 1 env or 4,096. Until ``learning_starts`` transitions
have been collected, actions are uniformly random (if ``random_warmup``) and no gradient step is taken.

Algorithm states using these helpers have the fields ``env_step``, ``buffer``, ``obs_stats``, ``key``
and ``iteration``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from rlx.buffers import ReplayBuffer, Transition
from rlx.config import ConfigError, field
from rlx.envs import Env, training_env
from rlx.ops.normalization import RunningStats, init_stats, normalize, update_stats


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig:
    """Fields of the collect-and-replay loop every off-policy algorithm has."""

    # Static
    num_envs: int = field(1, gt=0, doc="parallel envs")
    rollout_length: int = field(1, gt=0, doc="env steps per env per iteration")
    utd_ratio: float = field(1.0, gt=0, doc="gradient steps per collected transition")
    batch_size: int = field(256, gt=0, doc="transitions per gradient step")
    buffer_size: int = field(1_000_000, gt=0, doc="replay capacity in transitions (split evenly over envs)")
    learning_starts: int = field(5_000, ge=0, doc="transitions collected before the first gradient step")
    random_warmup: bool = field(True, doc="uniformly random actions until learning_starts")
    normalize_observations: bool = field(False, doc="Welford running mean/std of observations")
    # Traced
    gamma: float = field(0.99, traced=True, ge=0, le=1, doc="discount")
    reward_scaling: float = field(1.0, traced=True, gt=0, doc="rewards are multiplied by this")

    @property
    def transitions_per_iteration(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def updates_per_iteration(self) -> int:
        return round(self.transitions_per_iteration * self.utd_ratio)

    @property
    def sequence_length(self) -> int:
        """Consecutive transitions per sample (n-step methods override this)."""
        return 1

    def check(self) -> None:
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
        if self.buffer_size // self.num_envs < self.sequence_length:
            raise ConfigError(
                f"agent.buffer_size: must hold {self.sequence_length} transitions per env "
                f"({self.num_envs} envs); got {self.buffer_size}"
            )


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(OffPolicyConfig):
    """The loop's fields plus those of an actor and Polyak-averaged critics (SAC, TD3)."""

    actor_hidden: tuple[int, ...] = field((256, 256), gt=0)
    critic_hidden: tuple[int, ...] = field((256, 256), gt=0)
    activation: str = field("relu", choices=("tanh", "relu", "swish", "elu"))
    tau: float = field(0.005, traced=True, gt=0, le=1, doc="Polyak rate of the target networks")
    actor_learning_rate: float = field(3e-4, traced=True, gt=0)
    critic_learning_rate: float = field(3e-4, traced=True, gt=0)


def steps_per_iteration(config: OffPolicyConfig) -> int:
    return config.transitions_per_iteration


def replay_buffer(config: OffPolicyConfig) -> ReplayBuffer:
    return ReplayBuffer(config.buffer_size, config.batch_size, config.num_envs, config.sequence_length)


def init_loop(config: OffPolicyConfig, env: Env, key: jax.Array) -> dict:
    """Initial ``env_step``, empty ``buffer`` and ``obs_stats`` for an algorithm state."""
    env_step = training_env(env, config.num_envs).reset(key)
    obs = jnp.zeros(env.observation_shape, jnp.float32)
    space = env.action_space
    action = jnp.zeros((), jnp.int32) if space.kind == "discrete" else jnp.zeros(space.shape, jnp.float32)
    example = Transition(obs, action, jnp.zeros(()), jnp.zeros((), bool), jnp.zeros((), bool), obs)
    stats = init_stats(env.observation_shape)
    if config.normalize_observations:
        stats = update_stats(stats, env_step.obs)
    return {"env_step": env_step, "buffer": replay_buffer(config).init(example), "obs_stats": stats}


def prepare_obs(config: OffPolicyConfig, obs_stats: RunningStats, obs: jax.Array) -> jax.Array:
    return normalize(obs_stats, obs) if config.normalize_observations else obs


def random_actions(env: Env, key: jax.Array, num: int) -> jax.Array:
    space = env.action_space
    if space.kind == "discrete":
        return jax.random.randint(key, (num,), 0, space.n)
    return jax.random.uniform(key, (num, *space.shape), minval=-1.0, maxval=1.0)


def transitions_collected(config: OffPolicyConfig, state: Any) -> jax.Array:
    return state.iteration * config.transitions_per_iteration


def collect(
    config: OffPolicyConfig, env: Env, state: Any, explore: Callable[[jax.Array, jax.Array], jax.Array]
) -> tuple[Any, dict]:
    """Steps every env ``rollout_length`` times with ``explore(normalized_obs, key) -> env actions`` (or
    random actions during warm-up) and adds the transitions to the buffer."""
    vec_env = training_env(env, config.num_envs)
    buffer = replay_buffer(config)
    warmup = config.random_warmup & (transitions_collected(config, state) < config.learning_starts)

    def one_step(carry, _):
        env_step, buffer_state, key, returns_sum, lengths_sum, episodes = carry
        key, policy_key, random_key = jax.random.split(key, 3)
        policy_action = explore(prepare_obs(config, state.obs_stats, env_step.obs), policy_key)
        action = jnp.where(warmup, random_actions(env, random_key, config.num_envs), policy_action)
        nxt = vec_env.step(env_step, action)
        transition = Transition(env_step.obs, action, nxt.reward, nxt.terminated, nxt.truncated, nxt.info["final_obs"])
        buffer_state = buffer.add(buffer_state, transition)
        done = nxt.done
        returns_sum += jnp.sum(jnp.where(done, nxt.info["episode_return"], 0.0))
        lengths_sum += jnp.sum(jnp.where(done, nxt.info["episode_length"], 0)).astype(jnp.float32)
        episodes += jnp.sum(done).astype(jnp.float32)
        return (nxt, buffer_state, key, returns_sum, lengths_sum, episodes), env_step.obs

    zero = jnp.zeros((), jnp.float32)
    carry = (state.env_step, state.buffer, state.key, zero, zero, zero)
    (env_step, buffer_state, key, returns_sum, lengths_sum, episodes), observations = jax.lax.scan(
        one_step, carry, None, length=config.rollout_length
    )
    obs_stats = state.obs_stats
    if config.normalize_observations:
        obs_stats = update_stats(obs_stats, observations)
    state = state.replace(env_step=env_step, buffer=buffer_state, key=key, obs_stats=obs_stats)
    stats = {"episode_return_sum": returns_sum, "episode_length_sum": lengths_sum, "episode_count": episodes}
    return state, stats


def train_updates(
    config: OffPolicyConfig, state: Any, gradient_step: Callable[[Any, Transition, jax.Array], tuple[Any, dict]]
) -> tuple[Any, dict]:
    """``updates_per_iteration`` calls of ``gradient_step(state, batch, key)`` on fresh uniform samples
    (observations normalized), once ``learning_starts`` transitions were collected; metrics averaged."""
    buffer = replay_buffer(config)

    def one_update(state, _):
        key, sample_key, step_key = jax.random.split(state.key, 3)
        batch = buffer.sample(state.buffer, sample_key)
        batch = batch.replace(
            obs=prepare_obs(config, state.obs_stats, batch.obs),
            next_obs=prepare_obs(config, state.obs_stats, batch.next_obs),
        )
        return gradient_step(state.replace(key=key), batch, step_key)

    def run(state):
        state, metrics = jax.lax.scan(one_update, state, None, length=config.updates_per_iteration)
        return state, jax.tree.map(jnp.mean, metrics)

    metrics_shape = jax.eval_shape(run, state)[1]

    def skip(state):
        return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

    ready = transitions_collected(config, state) + config.transitions_per_iteration >= config.learning_starts
    return jax.lax.cond(ready, run, skip, state)


def train_iteration(
    config: OffPolicyConfig,
    env: Env,
    state: Any,
    explore: Callable[[jax.Array, jax.Array], jax.Array],
    gradient_step: Callable[[Any, Env, Any, Transition, jax.Array], tuple[Any, dict]],
) -> tuple[Any, dict]:
    """One iteration of an off-policy algorithm: :func:`collect` with ``explore``, then
    :func:`train_updates` with ``gradient_step(config, env, state, batch, key)``, then count it."""
    state, episode_stats = collect(config, env, state, explore)
    state, metrics = train_updates(config, state, lambda s, b, k: gradient_step(config, env, s, b, k))
    return state.replace(iteration=state.iteration + 1), {**metrics, **episode_stats}
