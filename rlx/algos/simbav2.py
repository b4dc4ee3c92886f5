"""SimbaV2 (Lee et al. 2025, "Hyperspherical Normalization for Scalable Deep RL"): SAC on hyperspherical
networks with a distributional critic and reward scaling.

- Networks (``architecture: simbav2``, ``rlx.nets.hyper``): unit-norm features and weights, learnable
  scalers, LERP residual blocks; every HyperDense kernel is projected back onto the unit sphere after each
  optimizer step. Actor 1 block x 128 (separate mean and log-std heads, log-std in [-10, 2]); critics
  2 blocks x 512 with a 101-bin categorical value on [-5, 5] (``agent.critic.value: c51``).
- Rewards are divided by a running scale of the discounted return, ``max(std(G), max|G| / 5)``
  (``normalize_rewards``, ``normalized_return_max``), so returns fit the fixed support; observations are
  normalized by running statistics.
- A gradient step follows the authors' order: the actor against the current critics, then the
  temperature (target entropy ``-|A| / 2``, initial 0.01), then the critics toward the categorical soft TD
  target of the new actor and temperature (``returns + discount * (Z' - alpha log pi')`` projected onto the
  support; with 2 critics, the distribution of the member with the lower value: clipped double Q), then the
  Polyak target. Adam, no weight decay; every learning rate decays linearly from its initial value
  (1e-4) to ``final_learning_rate_fraction`` of it (5e-5) over the run's gradient steps.

Differences from the authors' code: the clipped-double-Q member is chosen per sample by the value of its
projected target rather than of its next-state distribution (they differ only where the support clips);
observations are clipped to 10 standard deviations after normalization (rlx's default; ``obs_norm_clip: null``
leaves them unclipped, as theirs); a reset of the
optimizer (``agent.reset``) restarts nothing of the decay, which follows the run's gradient-step count.
The authors use one critic on tasks without terminations (DMC) and two on episodic ones (``num_critics``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from rlx import nets
from rlx.algos import common, off_policy, sac
from rlx.config import ConfigError, field
from rlx.envs import Env
from rlx.nets import CriticNet, Model, PolicyNet
from rlx.ops import values
from rlx.ops.normalization import reward_scale
from rlx.ops.td import polyak_update

DESCRIPTION = "SimbaV2: SAC on hyperspherical networks, categorical critic, reward scaling by return statistics"
ACTION_SPACES = ("box",)


@dataclasses.dataclass(frozen=True)
class Config(off_policy.TemperatureConfig, off_policy.ActorCriticConfig):
    """SimbaV2 hyperparameters; defaults are the paper's (its MuJoCo/DMC settings)."""

    actor: PolicyNet = field(
        default_factory=lambda: PolicyNet(hidden=(128,), architecture="simbav2", std="log_range", log_std_min=-10.0),
        doc="tanh-Gaussian policy network (1 block x 128)",
    )
    critic: CriticNet = field(
        default_factory=lambda: CriticNet(
            hidden=(512, 512), architecture="simbav2", value="c51", num_bins=101, v_min=-5.0, v_max=5.0
        ),
        doc="Q-network (2 blocks x 512) and its value representation (101-bin categorical on [-5, 5])",
    )
    normalize_observations: bool = field(True, doc="Welford running mean/std of observations")
    normalize_rewards: bool = field(True, doc="divide sampled rewards by a running scale of the discounted return")
    initial_alpha: float = field(0.01, traced=True, gt=0, doc="temperature at the start (fixed if not autotuned)")
    target_entropy_per_dim: float = field(-0.5, doc="the default target entropy per action dimension")
    actor_learning_rate: float = field(1e-4, traced=True, gt=0, doc="initial; decays linearly")
    critic_learning_rate: float = field(1e-4, traced=True, gt=0, doc="initial; decays linearly")
    alpha_learning_rate: float = field(1e-4, traced=True, gt=0, doc="initial; decays linearly")
    final_learning_rate_fraction: float = field(
        0.5, traced=True, ge=0, le=1, doc="learning rates at the last gradient step, as a fraction of the initial"
    )

    RESETTABLE: ClassVar[dict[str, tuple[str, ...]]] = sac.Config.RESETTABLE  # the same state layout as SAC's

    def check(self) -> None:
        super().check()
        common.check_network(self.actor, "agent.actor.", dropout=False, hyperspherical=True)
        common.check_network(self.critic, "agent.critic.", dropout=False, hyperspherical=True)
        off_policy.check_sac_actor(self.actor, "SimbaV2")
        for name, section in (("actor", self.actor), ("critic", self.critic)):
            if section.architecture != "simbav2":  # an mlp is SAC with SimbaV2's schedule: rlx train sac
                raise ConfigError(
                    f"agent.{name}.architecture: SimbaV2's networks are hyperspherical: simbav2; got "
                    f"{section.architecture} (an mlp with these updates: rlx train sac)"
                )
        if self.critic.value == "mse":
            raise ConfigError(
                "agent.critic.value: SimbaV2's critic is distributional (rewards are scaled to fit its support): c51 "
                "(the paper's), hl_gauss or quantile; got mse"
            )


Params = sac.Params  # actor, critic, target_critic, log_alpha
OptStates = sac.OptStates  # actor, critic, alpha


State = off_policy.ActorCriticState  # SAC's; total_iterations sets the learning rates' decay


steps_per_iteration = off_policy.steps_per_iteration


def _networks(config: Config, env: Env) -> tuple[Model, Model, values.ValueRep]:
    return off_policy.stochastic_actor(config, env), *off_policy.critic(config, env)


policy = sac.policy  # the tanh-squashed Gaussian at normalized observations


def learning_rate_decay(hparams: common.Hyperparams, num_updates: jax.Array, total_updates: jax.Array) -> jax.Array:
    """The factor on every initial learning rate: 1 at the first gradient step, falling linearly to
    ``final_learning_rate_fraction`` at ``total_updates`` (and staying there)."""
    done = jnp.minimum(num_updates / jnp.maximum(total_updates, 1), 1.0)
    return 1.0 - (1.0 - hparams.final_learning_rate_fraction) * done


def init(config: Config, env: Env, key: jax.Array, total_iterations: int) -> State:
    """SAC's fresh state with ``total_iterations``, the length of the learning-rate decay."""
    return sac.init(config, env, key, total_iterations).replace(
        total_iterations=jnp.asarray(total_iterations, jnp.int32)
    )


def gradient_step(
    config: Config, env: Env, state: State, batch: off_policy.Batch, key: jax.Array
) -> tuple[State, dict]:
    """The actor (against the current critics), the temperature, the critics (toward the new actor's
    target), each optimizer step followed by the projection onto the sphere, then the Polyak target."""
    hp, params, opt = state.hparams, state.params, state.opt_state
    params = off_policy.with_fixed_temperature(config, hp, params)
    _, critic_net, rep = _networks(config, env)
    total_updates = off_policy.gradient_steps_before(config, state.total_iterations)
    decay = learning_rate_decay(hp, state.num_updates, total_updates)
    actor_key, next_key = jax.random.split(key)

    def actor_objective(actor_params):
        dist = policy(config, env, actor_params, batch.obs)
        raw = dist.sample(actor_key)
        log_prob = dist.log_prob(raw)
        q_pi = rep.decode(critic_net.apply(params.critic, batch.obs, dist.env_action(raw)))
        return jnp.mean(jnp.exp(params.log_alpha) * log_prob - jnp.min(q_pi, axis=0)), log_prob

    (actor_loss, log_prob), grads = jax.value_and_grad(actor_objective, has_aux=True)(params.actor)
    actor_tx = off_policy.optimizer(config, hp, hp.actor_learning_rate * decay)
    actor, actor_opt = common.optimizer_step(actor_tx, grads, opt.actor, params.actor)
    actor = nets.project_to_sphere(actor)
    log_alpha, alpha_opt, alpha_metrics = off_policy.temperature_step(
        config, env, hp, params.log_alpha, opt.alpha, log_prob, hp.alpha_learning_rate * decay
    )

    next_dist = policy(config, env, actor, batch.next_obs)
    next_raw = next_dist.sample(next_key)
    next_out = critic_net.apply(params.target_critic, batch.next_obs, next_dist.env_action(next_raw))
    shift = -jnp.exp(log_alpha) * next_dist.log_prob(next_raw)
    target = values.clipped_target(rep, next_out, batch.returns, batch.discount, shift)

    def critic_objective(critic_params):
        out = critic_net.apply(critic_params, batch.obs, batch.action)
        loss, error = off_policy.critic_loss_and_error(config, state, batch, rep, out, target)
        return loss, (rep.decode(out), error)

    (q_loss, (q, error)), grads = jax.value_and_grad(critic_objective, has_aux=True)(params.critic)
    critic_tx = off_policy.optimizer(config, hp, hp.critic_learning_rate * decay)
    critic, critic_opt = common.optimizer_step(critic_tx, grads, opt.critic, params.critic)
    critic = nets.project_to_sphere(critic)

    new_params = Params(actor, critic, polyak_update(params.target_critic, critic, hp.tau), log_alpha)
    metrics = {
        "critic_loss": q_loss,
        "actor_loss": actor_loss,
        **alpha_metrics,
        "entropy": -jnp.mean(log_prob),
        "alpha": jnp.exp(log_alpha),
        "q_mean": jnp.mean(q),
        "learning_rate_decay": decay,
    }
    new_state = state.replace(
        params=new_params, opt_state=OptStates(actor_opt, critic_opt, alpha_opt), num_updates=state.num_updates + 1
    )
    return off_policy.set_priorities(config, new_state, batch, error), metrics


explore = sac.explore  # a sample of the current policy
act = sac.act  # the squashed mean when deterministic, else a sample


def train_step(config: Config, env: Env, state: State) -> tuple[State, dict]:
    """One iteration: collect into the buffer, then ``updates_per_iteration`` gradient steps."""
    return off_policy.train_iteration(config, env, state, explore(config, env, state), gradient_step, init)


def value(config: Config, env: Env, state: State, obs: jax.Array) -> jax.Array:
    """SAC's ``min_k Q_k(obs, deterministic action)`` in reward units (the reward normalization's scale
    undone; ``reward_scaling`` kept, as SAC's)."""
    q = sac.value(config, env, state, obs)
    if config.normalize_rewards:
        q = q * reward_scale(state.loop.return_scale, config.normalized_return_max)
    return q
