"""IQN (Dabney et al. 2018, "Implicit Quantile Networks for Distributional Reinforcement Learning"): the Q-network
maps a state and a sampled fraction ``tau ~ U[0, 1]`` to the return quantile ``Z_tau(s, a)``
(``rlx.nets.implicit``). Per transition, ``N`` fractions ``tau_i`` for the online quantiles and ``N'`` fractions
``tau'_j`` for the target's; the loss is ``sum_i mean_j rho^kappa_{tau_i}(r + gamma^n Z'_{tau'_j}(s', a*) -
Z_{tau_i}(s, a))`` (quantile Huber). Actions, and the target's ``a*``, are greedy in the mean of ``K`` sampled
quantiles (risk-neutral); ``a*`` from the target network (the paper's and Dopamine's default) or, with
``double_q``, the online one. Everything else is DQN's: epsilon-greedy collection on the shared off-policy loop,
n-step returns, hard or Polyak target updates, resets.

Defaults are the paper's: N = N' = 64, K = 32, n = 64 cosine features, kappa = 1. Differences: the Atari conv
torso is ``agent.q``'s MLP (``rlx.nets.implicit``: all but the last hidden layer before the product, the last
after it); fractions are drawn per transition (as the paper and its TensorFlow code; Dopamine's JAX agent
shares one draw across the batch); ``value`` averages the ``K`` midpoint quantiles instead of sampled ones, so
it is deterministic.

With ``munchausen_alpha`` set it is M-IQN (Vieillard et al. 2020; their Dopamine agent): each target sample is
``r + alpha clip(tau log pi(a|s), l0, 0) + gamma sum_a' pi(a'|s') (Z'_j(s', a') - tau log pi(a'|s'))``, with
``pi = softmax(Q' / tau)`` and ``Q'`` the mean of ``K`` target-network quantiles at each state. Their agent acts by
sampling ``softmax(Q / tau)`` of the online network (with epsilon on top): ``munchausen_acting: softmax``; rlx's
default acts epsilon-greedily, as their Munchausen-DQN. Evaluation is greedy either way (theirs samples, epsilon 0.001).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from rlx.algos import common, dqn, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import Model, QNet
from rlx.nets.implicit import ImplicitQuantileMLP
from rlx.ops import munchausen
from rlx.ops.distributional import quantile_huber_loss, quantile_midpoints

DESCRIPTION = "IQN: implicit quantile network (sampled fractions, cosine embedding), risk-neutral greedy actions"
ACTION_SPACES = ("discrete",)


@dataclasses.dataclass(frozen=True)
class Config(dqn.Config):
    """IQN hyperparameters: DQN's plus the numbers of sampled fractions, the embedding size and kappa."""

    q: QNet = field(
        default_factory=lambda: QNet(hidden=(64, 64), activation="relu", kernel_init="lecun_normal", value="quantile"),
        doc="the implicit quantile network: hidden[:-1] before the fraction embedding, hidden[-1] after it",
    )
    double_q: bool = field(False, doc="online network picks the target's next action (the paper: target network)")
    num_tau_samples: int = field(64, gt=0, doc="N: fractions per transition for the online quantiles")
    num_tau_prime_samples: int = field(64, gt=0, doc="N': fractions per transition for the target quantiles")
    num_quantile_samples: int = field(32, gt=0, doc="K: fractions whose quantiles' mean ranks actions")
    embedding_dim: int = field(64, gt=0, doc="n: cosine features of a fraction")
    kappa: float = field(1.0, gt=0, doc="quantile Huber loss threshold")

    NOISY_NETS: ClassVar[bool] = False
    MUNCHAUSEN_VALUES: ClassVar[tuple[str, ...]] = ("quantile",)

    def check(self) -> None:
        if self.q.value != "quantile":  # before DQN's checks, whose Munchausen value error speaks of DQN
            raise ConfigError(f"agent.q.value: IQN learns sampled quantiles, so must be quantile; got {self.q.value}")
        super().check()
        if self.q.dueling:
            raise ConfigError("agent.q.dueling: not available for IQN's implicit quantile network; got true")
        if self.q.architecture != "mlp":
            raise ConfigError(f"agent.q.architecture: IQN's network is an mlp; got {self.q.architecture}")
        default_bins = type(self.q)().num_bins
        if self.q.num_bins != default_bins:  # it was accepted and ignored: IQN samples its fractions
            raise ConfigError(
                f"agent.q.num_bins: IQN samples its quantile fractions (num_tau_samples, num_tau_prime_samples, "
                f"num_quantile_samples); leave num_bins at {default_bins}; got {self.q.num_bins}"
            )


Params = dqn.Params
State = dqn.State
steps_per_iteration = off_policy.steps_per_iteration


def _network(config: Config, env: Env) -> Model:
    """``(obs [B, ...], fractions [B, M]) -> quantiles [B, M, num_actions]``."""
    return Model(ImplicitQuantileMLP(config.q, env.action_space.n, config.embedding_dim, len(env.observation_shape)))


def _fractions(key: jax.Array, batch: int, num: int) -> jax.Array:
    return jax.random.uniform(key, (batch, num))


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    net = _network(config, env)
    return dqn.init_with(
        config, env, key, total_iterations, lambda k: net.init(k, common.dummy_obs(env), jnp.full((1, 1), 0.5))[0]
    )


def quantile_target(
    target_next_quantiles: jax.Array, chooser_next_quantiles: jax.Array, returns: jax.Array, discount: jax.Array
) -> jax.Array:
    """IQN's target samples ``returns + discount * Z'(s', a*)`` ``[batch, N']`` from ``target_next_quantiles
    [batch, N', A]`` (target network at the bootstrap state), ``a*`` greedy in the mean over ``K`` of
    ``chooser_next_quantiles [batch, K, A]``."""
    next_action = jnp.argmax(jnp.mean(chooser_next_quantiles, axis=1), axis=-1)
    next_taken = jnp.take_along_axis(target_next_quantiles, next_action[:, None, None], axis=2)[..., 0]
    return returns[:, None] + discount[:, None] * next_taken


def quantile_loss(
    online_quantiles: jax.Array, fractions: jax.Array, action: jax.Array, target: jax.Array, kappa: float = 1.0
) -> jax.Array:
    """Per-sample quantile Huber loss ``[batch]`` of the taken actions' ``online_quantiles [batch, N, A]`` at
    ``fractions [batch, N]`` against the ``target`` samples ``[batch, N']``."""
    taken = jnp.take_along_axis(online_quantiles, action[:, None, None], axis=2)[..., 0]  # [batch, N]
    return quantile_huber_loss(taken, target, fractions, kappa)


def quantile_td_loss(
    online_quantiles: jax.Array,
    fractions: jax.Array,
    target_next_quantiles: jax.Array,
    chooser_next_quantiles: jax.Array,
    action: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
    kappa: float = 1.0,
) -> jax.Array:
    """Per-sample IQN loss ``[batch]``: ``quantile_loss`` against ``quantile_target``."""
    target = quantile_target(target_next_quantiles, chooser_next_quantiles, returns, discount)
    return quantile_loss(online_quantiles, fractions, action, target, kappa)


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """One update of the online network on ``batch`` with freshly drawn fractions; then the target update."""
    params, net = state.params, _network(config, env)
    size = batch.action.shape[0]
    keys = jax.random.split(jax.random.fold_in(key, 1), 6)
    online_tau = _fractions(keys[0], size, config.num_tau_samples)
    target_tau = _fractions(keys[1], size, config.num_tau_prime_samples)
    chooser_tau = _fractions(keys[2], size, config.num_quantile_samples)
    target_next, _ = net.apply_train(params.target, keys[3], batch.next_obs, target_tau)
    chooser = params.online if config.double_q else params.target
    chooser_next, _ = net.apply_train(chooser, keys[4], batch.next_obs, chooser_tau)
    hp = state.hparams
    if hp.get("munchausen_alpha") is not None:  # M-IQN (it refuses double Q: chooser_next is the target network's)
        now_tau = _fractions(jax.random.fold_in(key, 2), size, config.num_quantile_samples)
        target_now, _ = net.apply_train(params.target, jax.random.fold_in(key, 3), batch.obs, now_tau)
        target = munchausen.quantile_target(
            jnp.mean(target_now, axis=1),
            jnp.mean(chooser_next, axis=1),
            target_next,
            batch.action,
            batch.returns,
            batch.discount,
            *dqn.munchausen_hparams(hp),
        )
    else:
        target = quantile_target(target_next, chooser_next, batch.returns, batch.discount)

    def objective(online_params):
        out, _ = net.apply_train(online_params, keys[5], batch.obs, online_tau)
        loss = quantile_loss(out, online_tau, batch.action, target, config.kappa)
        return off_policy.batch_loss(config, state, batch, loss, loss), (out, loss)

    (loss, (out, per_sample)), grads = jax.value_and_grad(objective, has_aux=True)(params.online)
    metrics = {"loss": loss, "q_mean": jnp.mean(out), "grad_norm": optax.global_norm(grads)}
    state = off_policy.set_priorities(config, state, batch, per_sample)  # the quantile loss ranks transitions
    return dqn.apply_gradients(config, state, grads), metrics


def mean_quantiles(config: Config, env: Env, online: Any, obs: jax.Array, fractions: jax.Array) -> jax.Array:
    """``Q(obs, a)`` ``[B, A]`` as the mean of the quantiles at ``fractions [B, K]``."""
    return jnp.mean(_network(config, env).apply(online, obs, fractions), axis=1)


def _epsilon_greedy(
    config: Config,
    env: Env,
    online: Any,
    obs: jax.Array,
    eps: jax.Array,
    key: jax.Array,
    temperature: jax.Array | None = None,
) -> jax.Array:
    """Epsilon-greedy (with a ``temperature``, epsilon-softmax) actions ``[B]`` in the mean of ``K`` freshly sampled
    quantiles per observation."""
    tau_key, action_key = jax.random.split(key)
    fractions = _fractions(tau_key, obs.shape[0], config.num_quantile_samples)
    return common.epsilon_greedy(mean_quantiles(config, env, online, obs, fractions), eps, action_key, temperature)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: epsilon-greedy (M-IQN's ``munchausen_acting: softmax``: epsilon-softmax) collection into the
    buffer, then the gradient steps."""
    choose = functools.partial(_epsilon_greedy, temperature=dqn.acting_temperature(config, state))
    return dqn.epsilon_greedy_iteration(config, env, state, choose, gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Greedy actions in ``K`` sampled quantiles' mean (``deterministic``), else epsilon-greedy or -softmax
    (``epsilon_end``)."""
    choose = functools.partial(_epsilon_greedy, temperature=dqn.acting_temperature(config, state, deterministic))
    return dqn.act_with(choose, config, env, state, obs, key, deterministic)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``max_a`` of the mean of the ``K`` midpoint quantiles ``(2k + 1) / 2K``, for raw observations."""
    obs = off_policy.prepare_obs(config, state, obs)
    fractions = jnp.broadcast_to(
        quantile_midpoints(config.num_quantile_samples), (obs.shape[0], config.num_quantile_samples)
    )
    return jnp.max(mean_quantiles(config, env, state.params.online, obs, fractions), axis=-1)
