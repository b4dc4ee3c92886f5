"""DQN (Mnih et al., 2015) with double-Q targets, an optional dueling head and n-step returns; the value
representation is ``agent.q.value``: ``mse``, ``huber``, ``hl_gauss`` (classification, "Stop Regressing"),
``c51`` (distributional, Bellemare et al., 2017) or ``quantile`` (QR-DQN, Dabney et al., 2018).

Runs on the shared off-policy loop: ``num_envs`` vmapped envs explore epsilon-greedily (linear
schedule) into a replay buffer; n-step returns stop at the first episode end and bootstrap only if it
was a truncation. With ``q.noisy_std > 0`` the network is NoisyNet's (Fortunato et al., 2018): each env acts
greedily under its own noise draw, redrawn every step, and a gradient step draws independent noise for the
online, target and action-choosing passes (one draw per pass); evaluation acts on the mean network. With C51,
dueling, double Q, n-step returns and prioritized replay that is Rainbow (Hessel et al., 2018). With
``munchausen_alpha`` set the target is Munchausen-DQN's (Vieillard et al., 2020): the scaled log-policy of the
taken action, clipped, added to the reward, and the soft value of a softmax policy in place of the max; with
``munchausen_acting: softmax`` the behaviour policy draws its non-random actions from that softmax of the online
network (the authors' M-IQN acting).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlx.algos import common, off_policy
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import MLP, Model, QNet
from rlx.ops import munchausen, values
from rlx.ops.td import polyak_update
from rlx.rollout import PolicyStep

DESCRIPTION = "DQN: double Q, dueling, n-step, any value representation (C51, HL-Gauss, QR-DQN are options)"
ACTION_SPACES = ("discrete",)


@dataclasses.dataclass(frozen=True)
class QLearningConfig(off_policy.OffPolicyConfig):
    """The Q-learning fields DQN and i-DQN share (the shared off-policy fields plus the Q-network, the optimizer
    and the epsilon schedule)."""

    q: QNet = field(
        default_factory=lambda: QNet(hidden=(64, 64), activation="relu", kernel_init="lecun_normal", value="huber"),
        doc="Q-network and its value representation",
    )
    adam_eps: float = field(1e-5, gt=0)
    # Traced
    learning_rate: float = field(2.5e-4, traced=True, gt=0)
    max_grad_norm: float | None = field(10.0, traced=True, gt=0, doc="global gradient-norm clip (null: none)")
    epsilon_start: float = field(1.0, traced=True, ge=0, le=1)
    epsilon_end: float = field(0.05, traced=True, ge=0, le=1)
    exploration_fraction: float = field(0.5, traced=True, gt=0, le=1, doc="fraction of the run to anneal epsilon")

    MOVED: ClassVar[dict[str, str]] = {
        "hidden": "q.hidden",
        "activation": "q.activation",
        "dueling": "q.dueling",
        "value_loss": "q.value",
        "num_bins": "q.num_bins",
        "v_min": "q.v_min",
        "v_max": "q.v_max",
        "hl_gauss_sigma_ratio": "q.sigma_ratio",
    }

    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = {"q": ("params.online", "params.target", "opt_state")}
    NOISY_NETS: ClassVar[bool] = False  # whether q.noisy_std is read (acting and gradient steps draw the noise)

    def check(self) -> None:
        super().check()
        common.check_network(self.q, "agent.q.", noisy=self.NOISY_NETS)


@dataclasses.dataclass(frozen=True)
class Config(QLearningConfig):
    """DQN hyperparameters: the shared Q-learning ones plus the target network's."""

    PRIORITIZED_REPLAY: ClassVar[bool] = True
    PAL: ClassVar[bool] = True  # through batch_loss
    NOISY_NETS: ClassVar[bool] = True
    # q.value options whose targets take Munchausen's bonus (IQN's config inherits the fields: quantile, M-IQN)
    MUNCHAUSEN_VALUES: ClassVar[tuple[str, ...]] = ("mse", "huber", "hl_gauss")

    double_q: bool = field(True, doc="online network picks the next action, target network values it")
    target_update: str = field("hard", choices=("hard", "polyak"))
    target_update_period: int = field(
        500, gt=0, doc="gradient steps between hard target copies", read_with={"target_update": ("hard",)}
    )
    tau: float = field(
        0.005,
        traced=True,
        gt=0,
        le=1,
        doc="Polyak rate (target_update: polyak)",
        read_with={"target_update": ("polyak",)},
    )
    # Munchausen-DQN: null fields add nothing to the state, so runs written before resume as before
    munchausen_alpha: float | None = field(
        None,
        traced=True,
        ge=0,
        le=1,
        doc="Munchausen's scale of the log-policy bonus (the paper's 0.9; with iqn: M-IQN); null: the greedy target",
    )
    munchausen_tau: float | None = field(
        None, traced=True, gt=0, doc="Munchausen: temperature of the softmax policy of the target Q (null: 0.03)"
    )
    munchausen_clip: float | None = field(
        None, traced=True, lt=0, doc="Munchausen: lower clip l0 of tau * log pi(a|s) (null: the paper's -1)"
    )
    munchausen_acting: str = field(
        "greedy",
        choices=("greedy", "softmax"),
        doc="Munchausen: the behaviour policy's non-random actions are greedy, or drawn from softmax(Q / "
        "munchausen_tau) (the authors' M-IQN default; evaluation stays greedy)",
    )

    def check(self) -> None:
        super().check()
        if self.munchausen_alpha is None:
            for name in ("munchausen_tau", "munchausen_clip"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"agent.{name}: read only with munchausen_alpha set (the paper's 0.9), not null")
            if self.munchausen_acting != "greedy":
                raise ConfigError(
                    f"agent.munchausen_acting: read only with munchausen_alpha set (the paper's 0.9); use greedy; "
                    f"got {self.munchausen_acting}"
                )
            return
        if self.q.value not in self.MUNCHAUSEN_VALUES:
            raise ConfigError(
                f"agent.q.value: Munchausen's target is a scalar here (M-IQN is algo iqn); use mse, huber or "
                f"hl_gauss; got {self.q.value}"
            )
        if self.n_step != 1:
            raise ConfigError(f"agent.n_step: Munchausen adds each step's log-policy bonus; use 1; got {self.n_step}")
        if self.double_q:
            raise ConfigError("agent.double_q: Munchausen's soft value has no argmax to choose; use false; got true")


@struct.dataclass
class Params:
    online: Any
    target: Any


@struct.dataclass
class State:
    """Everything a DQN run needs to continue bit for bit, replay buffer included."""

    params: Params
    opt_state: Any
    loop: off_policy.LoopState  # envs, replay buffer, observation statistics
    key: jax.Array
    iteration: jax.Array
    total_iterations: jax.Array  # int32, for the epsilon schedule
    num_updates: jax.Array  # int32, gradient steps taken (for hard target copies)
    hparams: common.Hyperparams


steps_per_iteration = off_policy.steps_per_iteration


def _network(config: QLearningConfig, env: Env) -> tuple[Model, values.ValueRep]:
    """The Q-network, outputs ``[..., num_actions, rep.num_outputs]``, and its value representation."""
    rep = values.from_section(config.q)
    module = MLP(config.q, (env.action_space.n, rep.num_outputs), len(env.observation_shape), dueling=config.q.dueling)
    return Model(module), rep


epsilon = common.epsilon


def _optimizer(config: QLearningConfig, hparams: common.Hyperparams) -> optax.GradientTransformation:
    return off_policy.optimizer(config, hparams, hparams.learning_rate)


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    return init_with(
        config, env, key, total_iterations, lambda k: _network(config, env)[0].init(k, common.dummy_obs(env))[0]
    )


def init_with(
    config: QLearningConfig,
    env: Env,
    key: jax.Array,
    total_iterations: int,
    init_online: Callable[[jax.Array], Any],
    init_opt: Callable | None = None,
) -> State:
    """A fresh Q-learner state whose online params are ``init_online(key)`` and target params a copy of them;
    ``init_opt`` (default the optimizer's ``init``) builds the optimizer state from them."""
    key, net_key, env_key = jax.random.split(key, 3)
    online = init_online(net_key)
    hparams = common.Hyperparams.from_config(config)
    return State(
        params=Params(online, online),
        opt_state=(init_opt or _optimizer(config, hparams).init)(online),
        key=key,
        iteration=jnp.zeros((), jnp.int32),
        total_iterations=jnp.asarray(total_iterations, jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
        hparams=hparams,
        loop=off_policy.init_loop(config, env, env_key),
    )


def munchausen_hparams(hparams: common.Hyperparams) -> tuple[jax.Array, Any, Any]:
    """Munchausen's ``(alpha, tau, l0)`` from a state's hyperparameters; a null tau or l0 is the paper's 0.03 or -1
    (null fields add no leaves, so states without them keep their structure)."""
    return hparams.munchausen_alpha, hparams.get("munchausen_tau", 0.03), hparams.get("munchausen_clip", -1.0)


def acting_temperature(config: Config, state: State, deterministic: bool = False) -> jax.Array | None:
    """The temperature of the softmax the behaviour policy draws its non-random actions from (Munchausen's tau, with
    ``munchausen_acting: softmax`` when not ``deterministic``), or None: greedy."""
    if config.munchausen_acting == "greedy" or deterministic:
        return None
    return munchausen_hparams(state.hparams)[1]


def loss_and_error(
    rep: values.ValueRep, online_out: jax.Array, action: jax.Array, target: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per-sample loss of the taken actions' outputs (of ``online_out [batch, num_actions, O]``) against ``target``
    (``rep.target``'s), and the error prioritized replay ranks transitions by, both ``[batch]``: ``|target - Q|``
    for a scalar value (Schaul et al.), the loss itself for a distributional one (like Dopamine, the cross-entropy,
    which is the KL divergence plus the target's entropy; ``agent.q.priority_error: kl`` the KL, Rainbow's)."""
    taken = jnp.take_along_axis(online_out, action[:, None, None], axis=1)[:, 0]  # [batch, O]
    loss = rep.loss(taken, target)
    return loss, values.priority_error(rep, taken, target, loss)


def td_loss_and_error(
    rep: values.ValueRep,
    online_out: jax.Array,
    target_next_out: jax.Array,
    chooser_next_out: jax.Array,
    action: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """``loss_and_error`` of DQN's target for outputs ``[batch, num_actions, O]`` at ``s_0`` (online) and at the
    bootstrap state (target network; ``chooser`` picks the next action: the online network for double Q)."""
    next_action = jnp.argmax(rep.decode(chooser_next_out), axis=-1)
    next_taken = jnp.take_along_axis(target_next_out, next_action[:, None, None], axis=1)[:, 0]
    return loss_and_error(rep, online_out, action, rep.target(next_taken, returns, discount))


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """One update of the online network on ``batch``; then the hard or Polyak target update."""
    params = state.params
    net, rep = _network(config, env)
    target_dropout, chooser_dropout, online_dropout = jax.random.split(jax.random.fold_in(key, 1), 3)
    target_next, _ = net.apply_train(params.target, target_dropout, batch.next_obs)
    chooser_next = (
        net.apply_train(params.online, chooser_dropout, batch.next_obs)[0] if config.double_q else target_next
    )
    hp = state.hparams
    soft_target = hp.get("munchausen_alpha") is not None  # (the compiled config has its traced fields blanked)
    if soft_target:
        target_now, _ = net.apply_train(params.target, jax.random.fold_in(key, 2), batch.obs)
        target = munchausen.target(
            rep.decode(target_now),
            rep.decode(target_next),
            batch.action,
            batch.returns,
            batch.discount,
            *munchausen_hparams(hp),
        )

    def objective(online_params):
        out, _ = net.apply_train(online_params, online_dropout, batch.obs)
        if not soft_target:
            loss, error = td_loss_and_error(
                rep, out, target_next, chooser_next, batch.action, batch.returns, batch.discount
            )
        else:
            loss, error = loss_and_error(rep, out, batch.action, target)
        return off_policy.batch_loss(config, state, batch, loss, error), (out, error)

    (loss, (out, error)), grads = jax.value_and_grad(objective, has_aux=True)(params.online)
    metrics = {"loss": loss, "q_mean": jnp.mean(rep.decode(out)), "grad_norm": optax.global_norm(grads)}
    if config.q.noisy_std > 0:
        metrics["noise_scale"] = noise_scale(params.online)
    state = off_policy.set_priorities(config, state, batch, error)
    return apply_gradients(config, state, grads), metrics


def noise_scale(params: Any) -> jax.Array:
    """The mean ``|sigma|`` of a noisy network's weights (``kernel_sigma`` of every noisy layer): how much noise
    its acting and targets still see (NoisyNet's learned exploration)."""
    sigmas = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if path[-1].key == "kernel_sigma"]
    return sum(jnp.sum(jnp.abs(s)) for s in sigmas) / sum(s.size for s in sigmas)


def apply_gradients(config: Config, state: State, grads: Any) -> State:
    """The optimizer step of the online network on ``grads``, then the target update: a Polyak step toward the
    new online network, or (hard) a copy of it every ``target_update_period`` gradient steps."""
    hp, params = state.hparams, state.params
    online, opt_state = common.optimizer_step(_optimizer(config, hp), grads, state.opt_state, params.online)
    num_updates = state.num_updates + 1
    if config.target_update == "polyak":
        target = polyak_update(params.target, online, hp.tau)
    else:
        copy = num_updates % config.target_update_period == 0
        target = jax.tree.map(lambda o, t: jnp.where(copy, o, t), online, params.target)
    return state.replace(params=Params(online, target), opt_state=opt_state, num_updates=num_updates)


def _epsilon_greedy(
    config: QLearningConfig,
    env: Env,
    online: Any,
    obs: jax.Array,
    eps: jax.Array,
    key: jax.Array,
    noise: bool = True,
    temperature: jax.Array | None = None,
) -> jax.Array:
    """Epsilon-greedy actions on the online network (or, with a ``temperature``, epsilon-softmax); with noisy layers
    (and ``noise``) each observation's action under its own noise draw (NoisyNet's acting: each env an actor whose
    noise is redrawn every step)."""
    net, rep = _network(config, env)
    if config.q.noisy_std > 0 and noise:
        key, noise_key = jax.random.split(key)
        out = net.apply_noisy(online, noise_key, obs)
    else:
        out = net.apply(online, obs)
    return common.epsilon_greedy(rep.decode(out), eps, key, temperature)


def epsilon_greedy_iteration(
    config: QLearningConfig, env: Env, state: State, choose: Callable, gradient_step: Callable, init: Callable
) -> tuple[State, dict]:
    """One iteration of a Q-learner: collection with ``choose(config, env, online_params, obs, eps, key)`` at the
    scheduled epsilon into the buffer, then the gradient steps (DQN's and i-DQN's)."""
    eps = epsilon(state)

    def explore(obs, starts, carry, key):
        return PolicyStep(choose(config, env, state.params.online, obs, eps, key), {}, carry)

    state, metrics = off_policy.train_iteration(config, env, state, explore, gradient_step, init)
    return state, {**metrics, "epsilon": eps}


def act_with(
    choose: Callable,
    config: QLearningConfig,
    env: Env,
    state: State,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool,
) -> jax.Array:
    """``choose`` at epsilon 0 (``deterministic``) or ``epsilon_end``, for raw observations."""
    eps = jnp.where(deterministic, 0.0, state.hparams.epsilon_end)
    return choose(config, env, state.params.online, off_policy.prepare_obs(config, state, obs), eps, key)


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: epsilon-greedy (or epsilon-softmax) collection into the buffer, then the gradient steps."""
    choose = functools.partial(_epsilon_greedy, temperature=acting_temperature(config, state))
    return epsilon_greedy_iteration(config, env, state, choose, gradient_step, init)


def act(
    config: Config, env: Env, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Greedy actions (``deterministic``; a noisy network's mean), else epsilon-greedy (or epsilon-softmax) with
    ``epsilon_end`` (a noisy network's noise drawn per observation)."""
    temperature = acting_temperature(config, state, deterministic)
    choose = functools.partial(_epsilon_greedy, noise=not deterministic, temperature=temperature)
    return act_with(choose, config, env, state, obs, key, deterministic)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """``max_a Q(obs, a)`` for raw observations."""
    net, rep = _network(config, env)
    return jnp.max(rep.decode(net.apply(state.params.online, off_policy.prepare_obs(config, state, obs))), axis=-1)
