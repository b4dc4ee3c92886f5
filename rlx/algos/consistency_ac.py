"""Consistency actor-critic (Ding & Jin 2024, "Consistency Models as a Rich and Efficient Policy Class for
Reinforcement Learning"): the policy is a consistency model that maps Gaussian noise to an action in
``num_steps`` evaluations (``rlx.nets.consistency``), trained online to maximize twin critics.

One gradient step, in the order of the authors' online agent: the critics regress onto
``r + gamma min_k Q'_k(s', a')`` with ``a'`` sampled from the EMA copy of the actor; then the actor minimizes
``-Q_i(s, pi(s)) / stopgrad(mean |Q_j(s, pi(s))|)`` (Diffusion-QL's normalized Q-loss, ``i``, ``j`` drawn per
step), differentiating through the whole sampling chain; then the EMA actor moves toward the actor every
``ema_every`` steps from step ``ema_start`` on (before that it keeps its initial weights), and the target
critics by Polyak averaging. Acting draws ``num_candidates`` actions from the actor and picks one by a softmax
over their ``min_k Q'_k`` (the greedy one with ``deterministic``), after epsilon-greedy exploration with uniform
random actions, epsilon falling linearly from 1 to 0.01 over the first 10% of the run. Defaults are the
authors' (3x256 mish networks, 5 steps on levels ``linspace(80, 2)``, actor lr 1e-5, critic lr 3e-4).

Differences from the authors' code (quantumiracle/Consistency_Model_For_Reinforcement_Learning,
``online_agent.py``): rlx's shared replay loop (uniform random actions until ``learning_starts``; a truncated
episode bootstraps, theirs are terminal); the candidates' values come from the target critics, as theirs. The
paper's behaviour-cloning consistency loss is not used online by the authors' code and is not here either. Their
online runs clip both networks' gradient norms (1.0 by default, 1-10 per env in ``online.py``) and train once per
4 steps of 2 envs; here clipping is off unless ``agent.max_grad_norm`` is set. Their sampler clips the action to
[-1, 1] (``bound: clip``, the default); an actor whose samples all land past a bound then gets no Q-gradient and
stays there (one inverted_pendulum seed: a constant action, episodes of 7 steps). ``bound: tanh`` squashes instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from rlx.algos import common, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import CriticNet, Model, Net
from rlx.nets.consistency import ConsistencyNet, sample_actions, sampling_levels
from rlx.ops import values
from rlx.ops.td import polyak_update
from rlx.rollout import PolicyStep

DESCRIPTION = "Consistency actor-critic: a few-step consistency-model policy maximizing twin critics"
ACTION_SPACES = ("box",)


@dataclasses.dataclass(frozen=True)
class Config(off_policy.ActorCriticConfig):
    """Consistency actor-critic hyperparameters; defaults are the authors' online ones."""

    actor: Net = field(
        default_factory=lambda: Net(hidden=(256, 256, 256), activation="mish", kernel_init="lecun_normal"),
        doc="the consistency network F(s, a_t, t)",
    )
    critic: CriticNet = field(
        default_factory=lambda: CriticNet(hidden=(256, 256, 256), activation="mish", kernel_init="lecun_normal"),
        doc="Q-network and its value representation",
    )
    num_steps: int = field(5, gt=0, doc="consistency evaluations per sampled action")
    sigma_max: float = field(80.0, gt=0, doc="the largest noise level, where sampling starts")
    sigma_last: float = field(2.0, gt=0, doc="the smallest noise level of multistep sampling")
    sigma_data: float = field(0.5, gt=0)
    sigma_min: float = field(0.002, gt=0, doc="epsilon: the level where the consistency function is the identity")
    time_embedding: int = field(16, ge=4, doc="width of the noise level's sinusoidal embedding (even)")
    num_candidates: int = field(50, gt=0, doc="actions sampled per decision, one picked by its Q-value")
    bound: str = field(
        "clip",
        choices=("clip", "tanh"),
        doc="how sampled actions are brought into [-1, 1]: clip (the authors'; no actor gradient past the bounds) "
        "or tanh",
    )
    ema_every: int = field(5, gt=0, doc="gradient steps between EMA updates of the target actor")
    ema_start: int = field(1000, ge=0, doc="gradient steps before the first EMA update")
    actor_learning_rate: float = field(1e-5, traced=True, gt=0)
    ema_decay: float = field(0.995, traced=True, ge=0, lt=1, doc="EMA actor: decay per update")
    epsilon_start: float = field(1.0, traced=True, ge=0, le=1, doc="uniformly random action probability at start")
    epsilon_end: float = field(0.01, traced=True, ge=0, le=1)
    exploration_fraction: float = field(0.1, traced=True, gt=0, le=1, doc="fraction of the run to anneal epsilon")

    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {
        "actor": ("params.actor", "params.ema_actor", "opt_state.actor"),
        "critic": ("params.critic", "params.target_critic", "opt_state.critic"),
    }

    def check(self) -> None:
        super().check()
        if not self.sigma_min < self.sigma_last < self.sigma_max:
            raise ConfigError(
                f"agent.sigma_last: must lie between sigma_min = {self.sigma_min:g} and sigma_max = "
                f"{self.sigma_max:g}; got {self.sigma_last:g}"
            )
        if self.time_embedding % 2:  # an odd width used one feature less than it said
            raise ConfigError(
                f"agent.time_embedding: must be even (a sine and a cosine per frequency); got {self.time_embedding}"
            )
        common.check_network(self.actor, "agent.actor.", dropout=False)
        common.check_network(self.critic, "agent.critic.", dropout=False)


@struct.dataclass
class Params:
    actor: Any
    ema_actor: Any  # the target actor: an exponential moving average of ``actor``
    critic: Any
    target_critic: Any


@struct.dataclass
class OptStates:
    actor: Any
    critic: Any


State = off_policy.ActorCriticState  # params: Params, opt_state: OptStates; total_iterations for epsilon

steps_per_iteration = off_policy.steps_per_iteration


def _actor(config: Config, env: Env) -> Model:
    return Model(
        ConsistencyNet(config.actor, env.action_space.shape[0], config.time_embedding, len(env.observation_shape))
    )


def policy_sample(config: Config, env: Env, actor_params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
    """Actions ``[..., A]`` in [-1, 1] sampled by the consistency policy at (normalized) ``obs``."""
    net = _actor(config, env)
    return sample_actions(
        lambda o, a, t: net.apply(actor_params, o, a, t),
        obs,
        key,
        env.action_space.shape[0],
        sampling_levels(config.num_steps, config.sigma_max, config.sigma_last),
        config.sigma_data,
        config.sigma_min,
        len(env.observation_shape),
        config.bound,
    )


def normalized_q_loss(q_values: jax.Array, i: jax.Array, j: jax.Array) -> jax.Array:
    """``-mean(Q_i) / stopgrad(mean|Q_j|)`` from an ensemble's values ``[K, batch]`` (Diffusion-QL's actor loss)."""
    return -jnp.mean(q_values[i]) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q_values[j])))


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    """Fresh networks (the EMA actor and target critics start as copies), optimizers and loop."""
    critic_net, _ = off_policy.critic(config, env)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs, action = common.dummy_obs(env), common.dummy_action(env)
    actor, _ = _actor(config, env).init(actor_key, obs, action, jnp.ones((1,)))
    critic, _ = critic_net.init(critic_key, obs, action)
    hparams = common.Hyperparams.from_config(config)
    tx = off_policy.optimizer(config, hparams, 1.0)
    return State(
        params=Params(actor, actor, critic, critic),
        opt_state=OptStates(tx.init(actor), tx.init(critic)),
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
        hparams=hparams,
        loop=off_policy.init_loop(config, env, env_key),
        total_iterations=jnp.asarray(total_iterations, jnp.int32),
    )


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """Critics, then actor (through the sampling chain), then the EMA actor and the target critics."""
    hp, params = state.hparams, state.params
    critic_net, rep = off_policy.critic(config, env)
    next_key, actor_key, pick_key = jax.random.split(key, 3)

    next_action = policy_sample(config, env, params.ema_actor, batch.next_obs, next_key)
    next_out = critic_net.apply(params.target_critic, batch.next_obs, next_action)
    target = values.clipped_target(rep, next_out, batch.returns, batch.discount)

    def critic_objective(critic_params):
        out = critic_net.apply(critic_params, batch.obs, batch.action)
        loss, error = off_policy.critic_loss_and_error(config, state, batch, rep, out, target)
        return loss, (rep.decode(out), error)

    (q_loss, (q, error)), critic_grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    critic_tx = off_policy.optimizer(config, hp, hp.critic_learning_rate)
    critic, critic_opt = common.optimizer_step(critic_tx, critic_grads, state.opt_state.critic, params.critic)

    i, j = jax.random.randint(pick_key, (2,), 0, config.num_critics)

    def actor_objective(actor_params):
        action = policy_sample(config, env, actor_params, batch.obs, actor_key)
        return normalized_q_loss(rep.decode(critic_net.apply(critic, batch.obs, action)), i, j)

    actor_loss, actor_grads = jax.value_and_grad(actor_objective)(params.actor)
    actor_tx = off_policy.optimizer(config, hp, hp.actor_learning_rate)
    actor, actor_opt = common.optimizer_step(actor_tx, actor_grads, state.opt_state.actor, params.actor)

    ema_due = (state.num_updates >= config.ema_start) & (state.num_updates % config.ema_every == 0)
    ema_actor = jax.tree.map(
        lambda ema, new: jnp.where(ema_due, hp.ema_decay * ema + (1.0 - hp.ema_decay) * new, ema),
        params.ema_actor,
        actor,
    )
    new_params = Params(actor, ema_actor, critic, polyak_update(params.target_critic, critic, hp.tau))
    metrics = {"critic_loss": q_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(q)}
    new_state = state.replace(
        params=new_params, opt_state=OptStates(actor_opt, critic_opt), num_updates=state.num_updates + 1
    )
    return off_policy.set_priorities(config, new_state, batch, error), metrics


def select_action(config: Config, env: Env, params: Params, obs: jax.Array, key: jax.Array, greedy: bool) -> jax.Array:
    """One of ``num_candidates`` sampled actions per observation ``obs [B, ...]`` (normalized), drawn by a softmax
    over their ``min_k Q'_k`` (the target critics), or the best one when ``greedy``."""
    sample_key, pick_key = jax.random.split(key)
    candidates_obs = jnp.broadcast_to(obs, (config.num_candidates, *obs.shape))
    candidates = policy_sample(config, env, params.actor, candidates_obs, sample_key)  # [N, B, A]
    critic_net, rep = off_policy.critic(config, env)
    q = jnp.min(rep.decode(critic_net.apply(params.target_critic, candidates_obs, candidates)), axis=0)  # [N, B]
    pick = jnp.argmax(q, axis=0) if greedy else jax.random.categorical(pick_key, q, axis=0)
    return jnp.take_along_axis(candidates, pick[None, :, None], axis=0)[0]


def explore(config: Config, env: Env, state: State):
    """The behaviour policy: with probability epsilon a uniformly random action, else :func:`select_action`."""
    eps = common.epsilon(state)

    def behave(obs, starts, carry, key):
        select_key, explore_key, random_key = jax.random.split(key, 3)
        action = select_action(config, env, state.params, obs, select_key, greedy=False)
        random_action = jax.random.uniform(random_key, action.shape, minval=-1.0, maxval=1.0)
        explore_now = jax.random.uniform(explore_key, action.shape[:1]) < eps
        return PolicyStep(jnp.where(explore_now[:, None], random_action, action), {}, carry)

    return behave


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""
    state, metrics = off_policy.train_iteration(config, env, state, explore(config, env, state), gradient_step, init)
    return state, {**metrics, "epsilon": common.epsilon(state)}


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Env actions for raw observations: the best of the candidates when ``deterministic``, else a softmax pick."""
    return select_action(
        config, env, state.params, off_policy.prepare_obs(config, state, obs), key, greedy=deterministic
    )


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``min_k Q_k(obs, greedy action)`` for raw observations."""
    norm_obs = off_policy.prepare_obs(config, state, obs)
    critic_net, rep = off_policy.critic(config, env)
    action = act(config, env, state, obs, jax.random.PRNGKey(0), deterministic=True)
    return jnp.min(rep.decode(critic_net.apply(state.params.critic, norm_obs, action)), axis=0)
