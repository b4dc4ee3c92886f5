"""rlx side of the benchmark: raw vmapped env stepping and rlx training throughput.

``run.py`` calls these functions in its own process (the rlx venv) and also runs this file as a worker
in the jax 0.9.2 venv (``brax_venv.py``), where brax.training runs, to separate the jax version's effect
from rlx's::

    .bench/brax-venv/bin/python scripts/bench/rlx_side.py JOB.json   # last line: BENCH_RESULT <json>

    {"kind": "raw", "env_spec": SPEC, "num_envs": N, "min_seconds": S}
    {"kind": "train", "config": RUN_CONFIG_DICT, "iterations_per_chunk": K, "timed_chunks": T,
     "lockstep": true | false}

Training is timed per chunk of ``iterations_per_chunk`` iterations, one jitted ``Experiment.run_chunk``
call each (what ``rlx train`` runs between logs), with the convention of ``timing.py`` that
``brax_side.py`` shares. rlx's own ahead-of-time compile time of the chunk (``Experiment.compile_seconds``)
is reported as ``aot_compile_seconds``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import timing
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from rlx import algos, driver, presets
from rlx.algos.off_policy import random_actions
from rlx.config import ConfigError, to_dict
from rlx.envs import Vmap, make, parse_env_spec

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def agent_overrides(items: list[str]) -> dict:
    """``--agent KEY=VALUE`` items as agent fields, each value read as YAML (``3e-4``, ``true``, ``[64, 64]``)."""
    return {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in items)}


def load_preset(name_or_path: str) -> dict:
    """A preset: a packaged name (``sac_ant``), ``configs/sac_ant.yaml``, or a YAML path relative to the working
    directory or else to the repository root. A bad one exits with one line (the script's name and the reason)."""
    if not os.path.isabs(name_or_path) and not os.path.exists(name_or_path):
        in_repo = os.path.join(REPO, name_or_path)
        name_or_path = in_repo if os.path.exists(in_repo) else name_or_path
    return _or_exit(presets.load, name_or_path)


def preset_config(path: str, env_spec: str, agent: dict | None = None, **run_fields: Any) -> driver.RunConfig:
    """``run_config`` of the preset ``path`` (as :func:`load_preset` takes it)."""
    return run_config(load_preset(path), env_spec, agent, **run_fields)


def run_config(config_data: dict, env_spec: str, agent: dict | None = None, **run_fields: Any) -> driver.RunConfig:
    """The preset ``config_data`` on ``env_spec`` (its fields override the preset's ``env``), with
    ``agent`` fields and top-level ``run_fields`` replaced; validated (a bad value exits with one line)."""
    data = copy.deepcopy(config_data)
    data["env"] = {**data.get("env", {}), **_or_exit(parse_env_spec, env_spec)}
    data.setdefault("agent", {}).update(agent or {})
    data.update(run_fields)
    return _or_exit(driver.build_config, data)


def _or_exit(function: Callable, *args: Any) -> Any:
    """``function(*args)``; a ConfigError exits with its one line instead of a traceback."""
    try:
        return function(*args)
    except ConfigError as e:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {e}")


def env_steps_per_iteration(config: driver.RunConfig) -> int:
    """Env steps (incl. action repeat) one ``train_step`` takes."""
    return algos.get(config.algo).steps_per_iteration(config.agent) * config.env.action_repeat


def bench_raw(env_spec: str, num_envs: int, scan_length: int = 100, repeats: int = 5, min_seconds: float = 0.0) -> dict:
    """Vmapped ``env.step`` (time limit and action repeat, no auto-reset) with uniform random actions in a
    ``scan_length``-step ``lax.scan``; env steps/s over at least ``repeats`` calls and ``min_seconds``
    after a warm-up call."""
    env = Vmap(make(env_spec), num_envs)
    repeat = getattr(env.env, "repeat", 1)  # ActionRepeat: env steps per agent step

    def run(env_step, key):
        def body(carry, k):
            return env.step(carry, random_actions(env, k, num_envs)), None

        env_step, _ = jax.lax.scan(body, env_step, jax.random.split(key, scan_length))
        return env_step

    tic = time.perf_counter()
    reset = jax.jit(env.reset).lower(jax.random.PRNGKey(0)).compile()
    env_step = jax.block_until_ready(reset(jax.random.PRNGKey(0)))  # compile_s: compiling only
    step = jax.jit(run).lower(env_step, jax.random.PRNGKey(1)).compile()
    compile_s = time.perf_counter() - tic
    env_step = jax.block_until_ready(step(env_step, jax.random.PRNGKey(1)))  # warm-up
    calls, seconds = 0, 0.0
    while calls < repeats or seconds < min_seconds:
        tic = time.perf_counter()
        for _ in range(repeats):
            env_step = step(env_step, jax.random.PRNGKey(2 + calls))
            calls += 1
        jax.block_until_ready(env_step)
        seconds += time.perf_counter() - tic
    return {"steps_per_second": num_envs * scan_length * calls * repeat / seconds, "compile_seconds": compile_s}


def bench_train(
    config: driver.RunConfig,
    iterations_per_chunk: int = 1,
    timed_chunks: int = 3,
    min_seconds: float = 0.0,
    before_chunk: Callable[[int], None] | None = None,
) -> dict:
    """rlx training env steps/s of ``config`` after compilation, timed as ``timing.summarize`` says.

    Off-policy algorithms are measured with ``learning_starts: 0`` so every iteration does its gradient
    steps. Runs ``timing.WARMUP + timed_chunks`` chunks, and more until the timed ones took ``min_seconds``;
    ``before_chunk(index)`` (untimed) runs before each."""
    per_iteration = env_steps_per_iteration(config)
    num_chunks = timing.WARMUP + timed_chunks
    data = {
        **to_dict(config),
        "total_env_steps": per_iteration * iterations_per_chunk * num_chunks,
        "num_chunks": num_chunks,
    }
    if config.algo != "ppo":
        data["agent"]["learning_starts"] = 0
    experiment = driver.Experiment(driver.build_config(data))
    state = experiment.init()
    jax.block_until_ready(state)
    seconds: list[float] = []
    while len(seconds) < num_chunks or sum(seconds[timing.WARMUP :]) < min_seconds:
        if before_chunk is not None:
            before_chunk(len(seconds))
        tic = time.perf_counter()
        state, _ = experiment.run_chunk(state, len(seconds) % num_chunks)
        jax.block_until_ready(state)
        seconds.append(time.perf_counter() - tic)
    steps = [per_iteration * iterations_per_chunk] * len(seconds)
    return {**timing.summarize(steps, seconds), "aot_compile_seconds": experiment.compile_seconds}


def train_to_budget(config: driver.RunConfig) -> dict:
    """Trains ``config`` for its ``total_env_steps`` in ``num_chunks`` chunks as ``rlx train`` does without
    a run directory: deterministic evaluation after every ``eval_every`` chunks and at the end.

    Returns steady env steps/s and compile seconds (``timing.summarize``), training seconds (all chunks),
    wall seconds (env creation to final evaluation) and the final evaluation return."""
    wall_start = time.perf_counter()
    experiment = driver.Experiment(config)
    plan = experiment.plan
    state = experiment.init()
    seconds, evaluation = [], {}
    for chunk in range(plan.num_chunks):
        tic = time.perf_counter()
        state, _ = experiment.run_chunk(state, chunk)
        jax.block_until_ready(state)
        seconds.append(time.perf_counter() - tic)
        last = chunk + 1 == plan.num_chunks
        if last or (config.eval_every and (chunk + 1) % config.eval_every == 0):
            evaluation = experiment.evaluate(state, chunk)
    wall = time.perf_counter() - wall_start
    steps = [plan.env_steps(c + 1) - plan.env_steps(c) for c in range(plan.num_chunks)]
    return {
        **timing.summarize(steps, seconds),
        "env_steps": plan.total_env_steps,
        "aot_compile_seconds": experiment.compile_seconds,
        "train_seconds": sum(seconds),
        "wall_seconds": wall,
        "final_eval_return": evaluation.get("eval/episode_return"),
    }


def git_state() -> str:
    """``git describe --always --dirty`` of the rlx checkout these scripts run from."""
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    done = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown (not a git checkout)"


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    if job["kind"] == "raw":
        result = bench_raw(job["env_spec"], job["num_envs"], min_seconds=job["min_seconds"])
    else:
        result = bench_train(
            driver.build_config(job["config"]),
            job["iterations_per_chunk"],
            job["timed_chunks"],
            before_chunk=lambda _: timing.gate(job["lockstep"]),
        )
    print("BENCH_RESULT " + json.dumps({**result, "versions": timing.versions()}), flush=True)


if __name__ == "__main__":
    main()
