"""rlx run config -> brax.training job (``brax_side.py``), plus what was matched and what could not be.

PPO. One rlx iteration steps ``num_envs`` envs ``unroll_length`` times, then takes ``num_epochs`` x
``num_minibatches`` gradient steps on minibatches of ``num_envs * unroll_length / num_minibatches``
transitions. One brax training step collects ``batch_size * num_minibatches / num_envs`` unrolls of
``unroll_length`` per env, then takes ``num_updates_per_batch`` x ``num_minibatches`` gradient steps on
minibatches of ``batch_size`` unrolls. With ``batch_size = num_envs / num_minibatches`` and
``num_updates_per_batch = num_epochs`` both take the same env steps and the same number and size of
gradient steps per iteration. With ``gae_segment_length`` L < ``unroll_length`` T, brax's ``unroll_length`` is L
and it collects T / L unrolls per env (``batch_size = num_envs * T / L / num_minibatches``). With
``advantages: minibatch`` and ``advantage_estimator: vtrace`` rlx computes advantages as brax does (per minibatch,
with the current value network, ``r + gamma * vs_{t+1} - V``).

SAC. One rlx iteration steps ``num_envs`` envs ``rollout_length`` times and takes
``num_envs * rollout_length * utd_ratio`` gradient steps of ``batch_size``; one brax training step steps
``num_envs`` envs once and takes ``grad_updates_per_step`` gradient steps of ``batch_size``. With
``rollout_length = 1`` and ``grad_updates_per_step = num_envs * utd_ratio`` they are the same.
"""

from __future__ import annotations

import dataclasses

from rlx.algos.policy_gradient import segment_length
from rlx.config import ConfigError
from rlx.driver import RunConfig

BRAX_ALPHA_LEARNING_RATE = 3e-4  # brax sac.train: optax.adam(3e-4) for log alpha, not configurable
BRAX_MIN_STD = 1e-3  # brax NormalTanhDistribution: softplus(.) + 1e-3

COMMON_UNMATCHED = [
    "auto-reset: rlx's training_env runs a fresh vmapped env.reset on steps where some episode ended (new random "
    "initial states); brax's AutoResetWrapper restores each env's stored first state (no reset computation; "
    "every episode of an env starts from the same state)",
    "random streams and seeds (both seed 0, different key splitting)",
]


def init_note(nets: dict) -> tuple[bool, str]:
    """Whether every network of ``nets`` (name -> Net section) is initialized as brax's (lecun_uniform kernels at gain
    1, zero biases), and the note that says so."""
    brax_like = all(n.kernel_init == "lecun_uniform" and n.output_scale == 1.0 for n in nets.values())
    if brax_like:
        return True, "initialization: lecun_uniform kernels, zero biases, every layer"
    used = ", ".join(f"{name} {n.kernel_init} (output x{n.output_scale:g})" for name, n in nets.items())
    return False, f"initialization: rlx {used}; brax lecun_uniform, every layer"


@dataclasses.dataclass
class BraxJob:
    """A ``brax_side.py`` job and the notes on how it maps the rlx config."""

    job: dict
    matched: list[str]
    unmatched: list[str]


def brax_env(config: RunConfig) -> dict:
    """The job's env spec: brax env name, backend, episode length and action repeat of ``config.env``."""
    suite, _, name = config.env.name.partition("/")
    if suite != "brax":
        raise ConfigError(f"env {config.env.name}: brax.training can only be compared on brax/* envs")
    return {
        "name": name,
        "backend": config.env.backend,
        "episode_length": config.env.episode_length or 1000,
        "action_repeat": config.env.action_repeat,
    }


def _shared(config: RunConfig, num_timesteps: int, epochs: int, num_eval_envs: int) -> dict:
    env = brax_env(config)
    return {
        "num_timesteps": num_timesteps,
        "num_evals": epochs + 1,
        "num_envs": config.agent.num_envs,
        "episode_length": env["episode_length"],
        "action_repeat": env["action_repeat"],
        "num_eval_envs": num_eval_envs,
        "deterministic_eval": True,
    }


def ppo_job(config: RunConfig, num_timesteps: int, epochs: int, num_eval_envs: int, run_evals: bool) -> BraxJob:
    """brax ``ppo.train`` with ``config.agent``'s hyperparameters; ``epochs`` timed training epochs of
    ``num_timesteps / epochs`` env steps each, evaluated after each only if ``run_evals``."""
    a = config.agent
    length = segment_length(a)
    segments = a.num_envs * (a.unroll_length // length)  # brax's unrolls per training step
    if segments % a.num_minibatches:
        raise ConfigError(
            f"PPO num_envs * unroll_length / gae_segment_length = {segments} must be a multiple of "
            f"num_minibatches={a.num_minibatches} for brax (batch_size = that / num_minibatches)"
        )
    batch_size = segments // a.num_minibatches
    train = {
        **_shared(config, num_timesteps, epochs, num_eval_envs),
        "run_evals": run_evals,
        "unroll_length": length,
        "batch_size": batch_size,
        "num_minibatches": a.num_minibatches,
        "num_updates_per_batch": a.num_epochs,
        "normalize_observations": a.normalize_observations,
        "normalize_advantage": a.normalize_advantages,
        "learning_rate": a.learning_rate,
        "entropy_cost": a.entropy_coef,
        "discounting": a.gamma,
        "gae_lambda": a.gae_lambda,
        "clipping_epsilon": a.clip_epsilon,
        "vf_loss_coefficient": a.value_coef,
        "reward_scaling": a.reward_scaling,
        "max_grad_norm": a.max_grad_norm,
    }
    if a.policy.activation != a.value.activation:
        raise ConfigError(
            f"PPO activations: policy {a.policy.activation}, value {a.value.activation}; brax's network "
            "factory takes one activation for both"
        )
    network = {
        "policy_hidden": list(a.policy.hidden),
        "value_hidden": list(a.value.hidden),
        "activation": a.policy.activation,
    }
    samples = a.num_envs * a.unroll_length // a.num_minibatches
    matched = [
        f"num_envs={a.num_envs}, unroll_length={a.unroll_length}, episode_length, action_repeat",
        f"env steps per iteration {a.num_envs * a.unroll_length * config.env.action_repeat} (brax batch_size="
        f"{batch_size} x num_minibatches={a.num_minibatches} = {segments} unrolls of {length} steps, "
        f"{a.unroll_length // length} per env, GAE bootstrapping at each unroll's end)",
        f"{a.num_epochs * a.num_minibatches} gradient steps per iteration of {samples} transitions "
        f"(num_updates_per_batch = num_epochs = {a.num_epochs}, num_minibatches = {a.num_minibatches})",
        f"networks: policy {list(a.policy.hidden)}, value {list(a.value.hidden)}, {a.policy.activation}",
        f"learning_rate={a.learning_rate:g} (constant), entropy_cost={a.entropy_coef:g}, discounting={a.gamma:g}, "
        f"gae_lambda={a.gae_lambda:g}, clipping_epsilon={a.clip_epsilon:g}, vf_loss_coefficient={a.value_coef:g}, "
        f"reward_scaling={a.reward_scaling:g}, max_grad_norm={a.max_grad_norm}",
        f"normalize_observations={a.normalize_observations}, normalize_advantage={a.normalize_advantages}",
    ]
    brax_advantages = "minibatches of whole unrolls, values and GAE recomputed in each with the current value network"
    unmatched = []
    (matched if a.adam_eps == 1e-8 else unmatched).append(f"Adam eps: rlx {a.adam_eps:g}, brax 1e-8 (optax default)")
    if a.advantages == "minibatch":
        matched.append(f"advantages: {brax_advantages} (rlx advantages: minibatch)")
    else:
        unmatched.append(
            "advantages: rlx (advantages: rollout) shuffles single transitions and computes values and GAE once per "
            f"iteration; brax: {brax_advantages}"
        )
    brax_estimator = "the policy's advantage r + gamma * vs_{t+1} - V(s_t)"
    if a.advantage_estimator == "vtrace":
        matched.append(f"{brax_estimator} (rlx advantage_estimator: vtrace)")
    else:
        unmatched.append(f"{brax_estimator}: rlx (advantage_estimator: gae) vs_t - V(s_t)")
    brax_init, note = init_note({"policy": a.policy, "value": a.value})
    (matched if brax_init else unmatched).append(note)
    if a.normalize_observations:
        clipped = a.obs_norm_clip is not None
        (unmatched if clipped else matched).append(
            f"normalized observations: rlx clipped to +-{a.obs_norm_clip:g}, brax unclipped"
            if clipped
            else "normalized observations unclipped"
        )
    unmatched += [
        "time limits: rlx bootstraps from V(final obs) on truncation; brax (bootstrap_on_timeout=False) "
        "cuts the GAE recursion there without bootstrapping",
        "observation statistics: brax updates them before the SGD epochs, rlx after",
    ]
    if a.normalize_observations:
        start = "observation statistics' start: brax mean 0, std 1 (the first rollout sees raw observations)"
        if a.obs_stats_from_reset:
            unmatched.append(f"{start}, rlx the reset observations")
        else:
            matched.append(f"{start} (rlx obs_stats_from_reset: false)")
    if a.lr_schedule != "constant":
        unmatched.append(f"learning-rate schedule: rlx {a.lr_schedule}, brax constant")
    if a.policy.squash != "tanh" or a.policy.std != "softplus" or a.policy.min_std != BRAX_MIN_STD:
        unmatched.append(
            f"policy: rlx squash={a.policy.squash} std={a.policy.std} min_std={a.policy.min_std:g}; "
            "brax tanh, softplus std, min_std 1e-3"
        )
    else:
        matched.append("policy: tanh-squashed Gaussian, mean and softplus(std)+1e-3 from one MLP")
    job = {"kind": "ppo", "env": brax_env(config), "network": network, "train": train}
    return BraxJob(job, matched, unmatched + COMMON_UNMATCHED)


def sac_job(config: RunConfig, num_timesteps: int, epochs: int, num_eval_envs: int) -> BraxJob:
    """brax ``sac.train`` with ``config.agent``'s hyperparameters (brax SAC evaluates after every epoch)."""
    a = config.agent
    if a.rollout_length != 1:
        raise ConfigError(
            f"SAC rollout_length={a.rollout_length}: brax steps each env once per training step; "
            "only rollout_length 1 can be matched"
        )
    train = {
        **_shared(config, num_timesteps, epochs, num_eval_envs),
        "batch_size": a.batch_size,
        "grad_updates_per_step": a.updates_per_iteration,
        "min_replay_size": a.learning_starts,
        "max_replay_size": a.buffer_size,
        "learning_rate": a.actor_learning_rate,
        "discounting": a.gamma,
        "tau": a.tau,
        "reward_scaling": a.reward_scaling,
        "normalize_observations": a.normalize_observations,
    }
    if a.actor.activation != a.critic.activation:
        raise ConfigError(
            f"SAC activations: actor {a.actor.activation}, critic {a.critic.activation}; brax's network "
            "factory takes one activation for both"
        )
    network = {
        "actor_hidden": list(a.actor.hidden),
        "critic_hidden": list(a.critic.hidden),
        "activation": a.actor.activation,
    }
    matched = [
        f"num_envs={a.num_envs}, one env step each per iteration, episode_length, action_repeat",
        f"{a.updates_per_iteration} gradient steps per iteration (grad_updates_per_step = num_envs x utd_ratio "
        f"{a.utd_ratio:g}) of batch_size={a.batch_size}",
        f"replay: max_replay_size = buffer_size = {a.buffer_size}, min_replay_size = learning_starts = "
        f"{a.learning_starts}",
        f"networks: actor {list(a.actor.hidden)}, critics {list(a.critic.hidden)}, {a.actor.activation}",
        f"discounting={a.gamma:g}, tau={a.tau:g}, reward_scaling={a.reward_scaling:g}, "
        f"normalize_observations={a.normalize_observations}",
    ]
    unmatched = [
        "target entropy: rlx " + ("-|A|" if a.target_entropy is None else f"{a.target_entropy:g}") + ", brax -|A|/2",
        "actor std: rlx log-std tanh-squashed into [-5, 2], brax softplus + 1e-3",
        "warm-up: rlx acts uniformly at random until learning_starts, brax prefills with the initial policy",
        "sampling: rlx samples one batch per gradient step, brax all grad_updates_per_step batches at once",
        "update order: rlx updates critic, actor (on the new critic), alpha; brax alpha, critic, actor (old critic)",
        "observation statistics: brax SAC updates them every step even when normalize_observations is off",
    ]
    if a.num_critics != 2:
        unmatched.append(f"critics: rlx {a.num_critics}, brax 2")
    brax_init, note = init_note({"actor": a.actor, "critic": a.critic})
    (matched if brax_init else unmatched).append(note)
    if a.actor_learning_rate == a.critic_learning_rate:
        matched.append(f"learning_rate={a.actor_learning_rate:g} (actor and critic)")
    else:
        unmatched.append(
            f"learning rates: rlx actor {a.actor_learning_rate:g} / critic {a.critic_learning_rate:g}, "
            f"brax one rate ({a.actor_learning_rate:g})"
        )
    temperature = a.autotune_alpha and a.initial_alpha == 1.0 and a.alpha_learning_rate == BRAX_ALPHA_LEARNING_RATE
    (matched if temperature else unmatched).append(
        f"temperature: rlx autotune={a.autotune_alpha}, initial alpha {a.initial_alpha:g}, "
        f"lr {a.alpha_learning_rate:g}; brax autotuned from alpha 1 with lr 3e-4"
    )
    job = {"kind": "sac", "env": brax_env(config), "network": network, "train": train}
    return BraxJob(job, matched, unmatched + COMMON_UNMATCHED)
