"""brax.training side of the benchmark. Runs in the brax venv (``brax_venv.py``) and never imports rlx.

    .bench/brax-venv/bin/python scripts/bench/brax_side.py JOB.json

prints its result as the last stdout line, ``BENCH_RESULT <json>``. A job (written by ``run.py`` from
``mapping.py``) is one of::

    {"kind": "raw", "env": ENV, "num_envs": N, "scan_length": L, "repeats": R, "min_seconds": S}
    {"kind": "ppo" | "sac", "env": ENV, "network": {...}, "train": {brax train() kwargs}, "lockstep": bool}

with ``ENV = {"name", "backend", "episode_length", "action_repeat"}``.

What brax 0.14.2's timings include (``brax/training/agents/{ppo,sac}/train.py``): ``train()`` runs
``num_evals - 1`` training epochs, each one call of a ``jax.pmap``-ed ``training_epoch`` (a ``lax.scan``
of ``num_training_steps_per_epoch`` training steps), timed with ``time.time()`` around the call and a
``block_until_ready`` of its metrics; ``training/sps`` = the epoch's env steps / that time and
``training/walltime`` accumulates them. The epoch times (recovered here as env steps / ``training/sps``)
therefore include tracing and compiling in the calls that compile (PPO's first two, SAC's first; see
``timing.py``), and are summarized with the convention rlx's side uses. Outside them (but inside ``wall_seconds``): env
creation, the initial ``pmap``-ed reset, network init, evaluations, and for SAC the replay-buffer
prefill (which brax adds to ``training/walltime``, not to ``training/sps``).
"""

from __future__ import annotations

import functools
import json
import sys
import time

import jax
import timing
from brax import envs
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import train as ppo
from brax.training.agents.sac import networks as sac_networks
from brax.training.agents.sac import train as sac
from flax import linen

ACTIVATIONS = {"tanh": linen.tanh, "relu": linen.relu, "swish": linen.swish, "elu": linen.elu}


def make_env(spec: dict) -> envs.Env:
    """The unwrapped brax env; brax.training adds the episode, action-repeat and auto-reset wrappers."""
    kwargs = {} if spec["backend"] is None else {"backend": spec["backend"]}
    return envs.get_environment(spec["name"], **kwargs)


def bench_raw(job: dict) -> dict:
    """Vmapped ``env.step`` with brax's episode wrapper (time limit, action repeat; no auto-reset) and
    uniform random actions in a ``scan_length``-step ``lax.scan``, timed as ``rlx_side.bench_raw``."""
    spec, num_envs, scan_length = job["env"], job["num_envs"], job["scan_length"]
    base = make_env(spec)
    env = envs.training.EpisodeWrapper(envs.training.VmapWrapper(base), spec["episode_length"], spec["action_repeat"])

    def run(state, key):
        def body(carry, k):
            action = jax.random.uniform(k, (num_envs, base.action_size), minval=-1.0, maxval=1.0)
            return env.step(carry, action), None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, scan_length))
        return state

    tic = time.perf_counter()
    reset = jax.jit(env.reset).lower(jax.random.split(jax.random.PRNGKey(0), num_envs)).compile()
    state = jax.block_until_ready(reset(jax.random.split(jax.random.PRNGKey(0), num_envs)))  # compile_s: compiling only
    step = jax.jit(run).lower(state, jax.random.PRNGKey(1)).compile()
    compile_s = time.perf_counter() - tic
    state = jax.block_until_ready(step(state, jax.random.PRNGKey(1)))  # warm-up
    calls, seconds = 0, 0.0
    while calls < job["repeats"] or seconds < job["min_seconds"]:
        tic = time.perf_counter()
        for _ in range(job["repeats"]):
            state = step(state, jax.random.PRNGKey(2 + calls))
            calls += 1
        jax.block_until_ready(state)
        seconds += time.perf_counter() - tic
    steps = num_envs * scan_length * calls * spec["action_repeat"]
    return {"steps_per_second": steps / seconds, "compile_seconds": compile_s}


def network_factory(kind: str, network: dict):
    """brax's own network factory with the job's hidden sizes and activation."""
    activation = ACTIVATIONS[network["activation"]]
    if kind == "ppo":
        return functools.partial(
            ppo_networks.make_ppo_networks,
            policy_hidden_layer_sizes=tuple(network["policy_hidden"]),
            value_hidden_layer_sizes=tuple(network["value_hidden"]),
            activation=activation,
        )

    def make_sac(observation_size, action_size, preprocess_observations_fn):
        def make(hidden):
            return sac_networks.make_sac_networks(
                observation_size,
                action_size,
                preprocess_observations_fn,
                hidden_layer_sizes=tuple(hidden),
                activation=activation,
            )

        actor, critic = make(network["actor_hidden"]), make(network["critic_hidden"])
        return actor.replace(q_network=critic.q_network)

    return make_sac


def bench_train(job: dict) -> dict:
    """Runs brax's ``ppo.train``/``sac.train`` with the job's kwargs; per-epoch timings from ``progress_fn``."""
    kind, kwargs = job["kind"], job["train"]
    records: list[tuple[int, dict]] = []

    def progress(step: int, metrics: dict) -> None:
        if "training/sps" in metrics:
            records.append((int(step), {k: float(v) for k, v in metrics.items()}))
        if kind == "sac":  # called after the initial evaluation and after every epoch
            timing.gate(job["lockstep"])

    def policy_params(*_) -> None:  # PPO calls it before the first epoch and after every epoch
        timing.gate(job["lockstep"])

    wall_start = time.perf_counter()
    environment = make_env(job["env"])
    if kind == "ppo":
        train_fn = functools.partial(ppo.train, policy_params_fn=policy_params)
    else:
        train_fn = sac.train
    train_fn(
        environment=environment,
        network_factory=network_factory(kind, job["network"]),
        progress_fn=progress,
        seed=0,
        **kwargs,
    )
    wall = time.perf_counter() - wall_start
    # Env steps before the first epoch: SAC's prefill of ceil(min_replay_size / num_envs) env-batch steps.
    previous = 0
    if kind == "sac":
        previous = -(-kwargs["min_replay_size"] // kwargs["num_envs"]) * kwargs["num_envs"] * kwargs["action_repeat"]
    steps, seconds = [], []
    for step, metrics in records:
        steps.append(step - previous)
        seconds.append((step - previous) / metrics["training/sps"])
        previous = step
    return {
        **timing.summarize(steps, seconds),
        "env_steps": records[-1][0] if records else 0,
        "train_seconds": sum(seconds),
        "wall_seconds": wall,
        "final_eval_return": records[-1][1].get("eval/episode_reward") if records else None,
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    result = bench_raw(job) if job["kind"] == "raw" else bench_train(job)
    print("BENCH_RESULT " + json.dumps({**result, "versions": timing.versions()}), flush=True)


if __name__ == "__main__":
    main()
