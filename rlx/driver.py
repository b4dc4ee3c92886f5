"""The host driver: runs an algorithm's jitted ``lax.scan`` over ``train_step`` in chunks.

Between chunks it logs (progress bar, JSONL/CSV/TensorBoard), evaluates, checkpoints the whole train
state with Orbax and stops on non-finite values. It never steps an env or computes a gradient itself.

Run directory contract (stable; scripts and notebooks rely on it)::

    RUN_DIR/config.yaml         the resolved RunConfig
    RUN_DIR/metrics.jsonl       one JSON object per chunk: chunk, env_steps, steps_per_second,
                                train/episode_return, ... and eval/episode_return when evaluated
    RUN_DIR/metrics.csv         the same rows as CSV
    RUN_DIR/tensorboard/        TensorBoard event files
    RUN_DIR/checkpoints/<N>/    Orbax checkpoint of the whole train state after N chunks
    RUN_DIR/summary.json        written when the run stops: status, env_steps, final evaluation, timings
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import yaml

from rlx import algos
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError, field, from_dict, to_dict, traced_fields
from rlx.envs import EnvConfig, Vmap, make
from rlx.metrics_log import MetricsWriter
from rlx.rollout import Policy, PolicyStep, first_episode_mask, unroll

SUMMED_METRICS = ("episode_return_sum", "episode_length_sum", "episode_count")


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: algorithm, env, budget and driver settings; ``agent`` is the algorithm's Config."""

    algo: str = field("ppo", doc="algorithm, a name in the registry (rlx.algos.ALGORITHMS; rlx algos lists them)")
    env: EnvConfig = field(default_factory=EnvConfig)
    seed: int = field(0, ge=0)
    total_env_steps: int = field(524_288, gt=0, doc="env steps to train (incl. action repeat)")
    num_chunks: int = field(10, gt=0, doc="jitted chunks; logging, eval and checkpoints happen between them")
    eval_every: int = field(1, ge=0, doc="evaluate every N chunks and at the end (0: only at the end)")
    eval_episodes: int = field(16, gt=0, doc="deterministic evaluation episodes (run in parallel)")
    checkpoint_every: int = field(1, ge=0, doc="checkpoint every K chunks and at the end (0: only at the end)")
    keep_checkpoints: int = field(3, gt=0, doc="how many recent checkpoints to keep")
    tensorboard: bool = field(True, doc="also write TensorBoard event files")
    agent: Any = field(None, doc="the algorithm's hyperparameters")


def build_config(data: dict | None = None) -> RunConfig:
    """Validates plain data (from YAML and ``--set``) into a :class:`RunConfig`; defaults fill the rest."""
    data = dict(data or {})
    algo_name = data.get("algo", "ppo")
    if not isinstance(algo_name, str):
        raise ConfigError(f"algo: expected a string, got {algo_name!r}")
    algo = algos.get(algo_name)
    agent = data.pop("agent", None) or {}
    if isinstance(agent, algo.Config):
        agent = to_dict(agent)
    if isinstance(data.get("env"), EnvConfig):
        data["env"] = to_dict(data["env"])
    run = from_dict(RunConfig, data)
    return dataclasses.replace(run, agent=from_dict(algo.Config, agent, prefix="agent."))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the env-step budget maps onto iterations and chunks."""

    env_steps_per_iteration: int
    num_iterations: int
    iterations_per_chunk: int
    num_chunks: int

    @classmethod
    def make(cls, total_env_steps: int, env_steps_per_iteration: int, num_chunks: int) -> "Plan":
        iterations = max(1, -(-total_env_steps // env_steps_per_iteration))
        per_chunk = -(-iterations // min(num_chunks, iterations))
        return cls(env_steps_per_iteration, iterations, per_chunk, -(-iterations // per_chunk))

    @property
    def total_env_steps(self) -> int:
        return self.num_iterations * self.env_steps_per_iteration

    def iterations_done(self, chunks_done: int) -> int:
        return min(chunks_done * self.iterations_per_chunk, self.num_iterations)

    def env_steps(self, chunks_done: int) -> int:
        return self.iterations_done(chunks_done) * self.env_steps_per_iteration


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


class Experiment:
    """A validated run config bound to its env and algorithm, with the compiled chunk and eval functions.

    Everything here is pure in the train state, so ``run_chunk`` can be called on any state (fresh,
    restored, or one of many) and gives the same result for the same input.
    """

    def __init__(self, config: RunConfig):
        self.config = config
        self.algo = algos.get(config.algo)
        self.env = make(config.env)
        reason = algos.supports(config.algo, self.env)
        if reason is not None:
            raise ConfigError(f"algo {config.algo} cannot train on env {config.env.name}: {reason}")
        steps = self.algo.steps_per_iteration(config.agent) * config.env.action_repeat
        self.plan = Plan.make(config.total_env_steps, steps, config.num_chunks)
        # The compiled functions see the agent config with its traced fields blanked out, so every traced
        # value they use comes from the train state (and a vmapped sweep cannot silently use the base value).
        self.static_agent = dataclasses.replace(config.agent, **{f: None for f in traced_fields(type(config.agent))})
        self._jitted_init = None
        self._compiled_chunk = None
        self._compiled_eval = None
        self.compile_seconds = 0.0

    @property
    def budget_note(self) -> str | None:
        """A message when the env-step budget had to be rounded up to whole iterations."""
        if self.plan.total_env_steps == self.config.total_env_steps:
            return None
        return (
            f"total_env_steps={self.config.total_env_steps} is not a multiple of the "
            f"{self.plan.env_steps_per_iteration} env steps per iteration; training "
            f"{self.plan.total_env_steps} env steps ({self.plan.num_iterations} iterations) instead"
        )

    # -- pure functions ------------------------------------------------------------------------------

    def init_fn(self, key: jax.Array, traced: dict[str, jax.Array] | None = None) -> Any:
        """Fresh train state; ``traced`` (field name -> scalar) replaces the config's traced values, so
        this can be vmapped over keys and hyperparameters."""
        agent = self.config.agent if traced is None else dataclasses.replace(self.static_agent, **traced)
        return self.algo.init(agent, self.env, key, self.plan.num_iterations)

    def chunk_fn(self, state: Any, num_active: jax.Array) -> tuple[Any, dict]:
        """Runs ``iterations_per_chunk`` iterations, of which the first ``num_active`` are real (the
        last chunk of a run may be shorter); returns the state and chunk-reduced metrics. When the plan's
        chunks are all full, ``num_active`` must be the chunk length and no per-iteration branch is built."""
        config, env, algo = self.static_agent, self.env, self.algo
        every_chunk_full = self.plan.num_iterations % self.plan.iterations_per_chunk == 0

        def body(state, i):
            if every_chunk_full:  # num_active is always the chunk length: no per-iteration branch
                return algo.train_step(config, env, state)
            metrics_shape = jax.eval_shape(lambda s: algo.train_step(config, env, s)[1], state)

            def idle(s):
                return s, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

            return jax.lax.cond(i < num_active, lambda s: algo.train_step(config, env, s), idle, state)

        length = self.plan.iterations_per_chunk
        state, metrics = jax.lax.scan(body, state, jnp.arange(length))
        active = (jnp.arange(length) < num_active).astype(jnp.float32)
        finite = jnp.stack([jnp.isfinite(v) for k, v in metrics.items() if k not in SUMMED_METRICS]).all(axis=0)
        reduced = {"first_nonfinite_iteration": jnp.argmax(~finite & (active > 0)).astype(jnp.float32)}
        for name, values in metrics.items():
            total = jnp.sum(values.astype(jnp.float32) * active)
            reduced[name] = total if name in SUMMED_METRICS else total / num_active
        reduced["params_finite"] = _all_finite(state.params)
        return state, reduced

    def evaluate_fn(self, state: Any, key: jax.Array) -> dict:
        """Mean undiscounted return of ``eval_episodes`` deterministic episodes (no auto-reset)."""
        n = self.config.eval_episodes
        eval_env = Vmap(self.env, n)
        reset_key, act_key = jax.random.split(key)
        out = unroll(eval_env, self.eval_policy(state), eval_env.reset(reset_key), (), act_key, self.env.max_episode_steps)
        alive = first_episode_mask(out.transitions)
        returns = jnp.sum(out.transitions.reward * alive, axis=0)
        lengths = jnp.sum(alive, axis=0)
        return {
            "eval/episode_return": returns.mean(),
            "eval/episode_return_std": returns.std(),
            "eval/episode_length": lengths.mean(),
        }

    def eval_policy(self, state: Any) -> Policy:
        """The deterministic policy of ``state`` as a rollout policy."""

        def policy(obs, starts, carry, key):
            return PolicyStep(self.algo.act(self.static_agent, self.env, state, obs, key, deterministic=True), {}, carry)

        return policy

    # -- compiled entry points -----------------------------------------------------------------------

    def init(self, seed: int | None = None) -> Any:
        """Fresh train state for ``seed`` (default: the config's)."""
        seed = self.config.seed if seed is None else seed
        if self._jitted_init is None:
            self._jitted_init = jax.jit(self.init_fn)
        return self._jitted_init(jax.random.fold_in(jax.random.PRNGKey(seed), 0))

    def abstract_state(self) -> Any:
        """Shapes and dtypes of the train state, without running anything."""
        return jax.eval_shape(self.init_fn, jax.random.PRNGKey(0))

    def run_chunk(self, state: Any, chunk_index: int) -> tuple[Any, dict]:
        """Runs chunk ``chunk_index`` (0-based) on ``state``; metrics come back as Python floats."""
        if self._compiled_chunk is None:
            start = time.perf_counter()
            donate = () if jax.default_backend() == "cpu" else (0,)  # CPU cannot donate buffers
            state = jax.block_until_ready(state)  # compile_seconds counts compiling only, not init still running
            lowered = jax.jit(self.chunk_fn, donate_argnums=donate).lower(state, jnp.int32(0))
            self._compiled_chunk = lowered.compile()
            self.compile_seconds += time.perf_counter() - start
        num_active = self.plan.iterations_done(chunk_index + 1) - self.plan.iterations_done(chunk_index)
        state, metrics = self._compiled_chunk(state, jnp.int32(num_active))
        return state, {k: float(v) for k, v in jax.device_get(metrics).items()}

    def evaluate(self, state: Any, chunk_index: int) -> dict:
        """Deterministic evaluation with a key that depends on (seed, chunk) only, never on training."""
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 1), chunk_index)
        if self._compiled_eval is None:
            start = time.perf_counter()
            self._compiled_eval = jax.jit(self.evaluate_fn).lower(state, key).compile()
            self.compile_seconds += time.perf_counter() - start
        return {k: float(v) for k, v in jax.device_get(self._compiled_eval(state, key)).items()}


def chunk_row(experiment: Experiment, chunk_index: int, metrics: dict, seconds: float) -> dict:
    """The metrics row the driver logs for a finished chunk."""
    plan = experiment.plan
    steps = plan.env_steps(chunk_index + 1) - plan.env_steps(chunk_index)
    count = metrics.pop("episode_count")
    returns, lengths = metrics.pop("episode_return_sum"), metrics.pop("episode_length_sum")
    row = {
        "chunk": chunk_index + 1,
        "env_steps": plan.env_steps(chunk_index + 1),
        "steps_per_second": steps / max(seconds, 1e-9),
        "train/episode_return": returns / count if count else None,
        "train/episode_length": lengths / count if count else None,
        "train/episodes": int(count),
    }
    row.update({f"train/{k}": v for k, v in metrics.items() if k not in NOT_LOGGED})
    return row


NOT_LOGGED = ("params_finite", "first_nonfinite_iteration")


def _divergence(metrics: dict) -> str | None:
    bad = [k for k, v in metrics.items() if k not in SUMMED_METRICS + NOT_LOGGED and not math.isfinite(v)]
    if metrics.get("params_finite", 1.0) < 0.5:
        bad.insert(0, "params")
    return ", ".join(bad) or None


@dataclasses.dataclass
class RunResult:
    """What a finished (or stopped) run returns."""

    state: Any
    rows: list[dict]
    run_dir: str | None
    status: str  # "completed" | "stopped" (summary.json may also say "diverged" or "interrupted")
    experiment: Experiment


def _prepare_run_dir(run_dir: str, overwrite: bool) -> None:
    if os.path.exists(os.path.join(run_dir, "config.yaml")):
        if not overwrite:
            raise ConfigError(
                f"--out {run_dir}: already holds a run; pass --resume {run_dir} to continue it "
                "or --overwrite to replace it"
            )
        shutil.rmtree(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"--out {run_dir}: not writable ({e.strerror})") from None


def train(
    config: RunConfig | dict,
    run_dir: str | None = None,
    *,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Trains from scratch. With ``run_dir`` None nothing is written (no logs, no checkpoints)."""
    config = config if isinstance(config, RunConfig) else build_config(config)
    experiment = Experiment(config)
    if run_dir is not None:
        _prepare_run_dir(run_dir, overwrite)
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            yaml.safe_dump(to_dict(config), f, sort_keys=False)
    if experiment.budget_note:
        print(f"rlx: note: {experiment.budget_note}", file=sys.stderr)
    state = experiment.init()
    return _loop(experiment, state, 0, run_dir, progress, stop_after_chunks)


def load_run_config(run_dir: str) -> RunConfig:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"--resume {run_dir}: no config.yaml there; not an rlx run directory")
    with open(path) as f:
        return build_config(yaml.safe_load(f))


def resume(run_dir: str, *, progress: bool = True, stop_after_chunks: int | None = None) -> RunResult:
    """Continues the run in ``run_dir`` from its newest checkpoint (or from scratch if it has none)."""
    config = load_run_config(run_dir)
    experiment = Experiment(config)
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), config.keep_checkpoints)
    try:
        restored = checkpointer.restore_latest_valid(experiment.abstract_state())
        if restored is None:
            state, start = experiment.init(), 0
        else:
            state, meta = restored
            start = int(meta["chunks_done"])
        newer = [step for step in checkpointer.all_steps() if step > start]
    finally:
        checkpointer.close()
    _set_aside(run_dir, newer)
    return _loop(experiment, state, start, run_dir, progress, stop_after_chunks)


def _set_aside(run_dir: str, steps: list[int]) -> None:
    """Moves damaged checkpoints newer than the restored one out of the way (kept, never deleted), so
    the resumed run can save those chunks again."""
    for step in steps:
        source = os.path.join(run_dir, "checkpoints", str(step))
        target = os.path.join(run_dir, "damaged_checkpoints", f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(source, target)
        print(f"rlx: warning: moved damaged checkpoint {source} to {target}", file=sys.stderr)


def _write_summary(run_dir: str, experiment: Experiment, rows: list[dict], status: str, seconds: float) -> None:
    final = rows[-1] if rows else {}
    summary = {
        "status": status,
        "algo": experiment.config.algo,
        "env": experiment.config.env.name,
        "env_steps": final.get("env_steps", 0),
        "total_env_steps": experiment.plan.total_env_steps,
        "eval/episode_return": final.get("eval/episode_return"),
        "train/episode_return": final.get("train/episode_return"),
        "compile_seconds": experiment.compile_seconds,
        "wall_seconds": seconds,
    }
    tmp = os.path.join(run_dir, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, os.path.join(run_dir, "summary.json"))


def _loop(
    experiment: Experiment,
    state: Any,
    start_chunk: int,
    run_dir: str | None,
    progress: bool,
    stop_after_chunks: int | None,
) -> RunResult:
    config, plan = experiment.config, experiment.plan
    writer = checkpointer = None
    if run_dir is not None:
        writer = MetricsWriter(run_dir, config.tensorboard, resume_after_chunk=start_chunk)
        checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), config.keep_checkpoints)
    rows = list(writer.rows) if writer else []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.total_env_steps, initial=plan.env_steps(start_chunk), unit="step",
                   unit_scale=True, dynamic_ncols=True, desc=f"{config.algo} {config.env.name}")
    status = "completed"
    start_time = time.perf_counter()
    try:
        for chunk in range(start_chunk, plan.num_chunks):
            compile_before = experiment.compile_seconds
            tic = time.perf_counter()
            state, metrics = experiment.run_chunk(state, chunk)
            seconds = time.perf_counter() - tic - (experiment.compile_seconds - compile_before)
            bad = _divergence(metrics)
            if bad is not None:
                status = "diverged"
                kept = ""
                if checkpointer is not None:
                    checkpointer.wait()
                    if checkpointer.latest() is not None:
                        kept = f"; last finite checkpoint: {checkpointer.path(checkpointer.latest())}"
                iteration = plan.iterations_done(chunk) + int(metrics["first_nonfinite_iteration"])
                where = (f"in iteration {iteration + 1} (env steps {iteration * plan.env_steps_per_iteration} to "
                         f"{(iteration + 1) * plan.env_steps_per_iteration}, chunk {chunk + 1})")
                if bad == "params":
                    where = f"by the end of chunk {chunk + 1} (env step {plan.env_steps(chunk + 1)})"
                raise DivergenceError(f"training diverged: non-finite {bad} {where}; run stopped{kept}")
            row = chunk_row(experiment, chunk, metrics, seconds)
            last = chunk + 1 == plan.num_chunks
            if last or (config.eval_every and (chunk + 1) % config.eval_every == 0):
                row.update(experiment.evaluate(state, chunk))
            rows.append(row)
            if writer is not None:
                writer.write(row)
            stopping = stop_after_chunks is not None and chunk + 1 - start_chunk >= stop_after_chunks and not last
            due = last or stopping or (config.checkpoint_every and (chunk + 1) % config.checkpoint_every == 0)
            if checkpointer is not None and due:
                meta = {"chunks_done": chunk + 1, "env_steps": row["env_steps"], "rlx_config": to_dict(config)}
                checkpointer.save(chunk + 1, state, meta)
            if bar is not None:
                bar.update(row["env_steps"] - bar.n)
                postfix = {"steps/s": f"{row['steps_per_second']:.3g}"}
                if row["train/episode_return"] is not None:
                    postfix["return"] = f"{row['train/episode_return']:.4g}"
                if "eval/episode_return" in row:
                    postfix["eval"] = f"{row['eval/episode_return']:.4g}"
                bar.set_postfix(postfix)
            if stopping:
                status = "stopped"
                break
    except BaseException:
        if status != "diverged":
            status = "interrupted"  # an error or Ctrl-C; checkpoints already written are intact
        raise
    finally:
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.wait()
            checkpointer.close()
        if writer is not None:
            writer.close()
        if run_dir is not None:
            _write_summary(run_dir, experiment, rows, status, time.perf_counter() - start_time)
    return RunResult(state=state, rows=rows, run_dir=run_dir, status=status, experiment=experiment)
