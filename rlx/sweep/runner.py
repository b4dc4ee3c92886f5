"""Running a sweep: each group's runs trained together by one jitted ``vmap`` of the driver's chunk
function, sharded by :class:`~rlx.sweep.placement.Placement`; per-run files, summary tables and resume."""

from __future__ import annotations

import csv
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
import numpy as np
import yaml

from rlx import driver, stats
from rlx.checkpoint import Checkpointer, CorruptCheckpointError
from rlx.config import ConfigError, load_yaml, to_dict, traced_fields
from rlx.metrics_log import MetricsWriter, read_metrics
from rlx.sweep.placement import Placement
from rlx.sweep.spec import Group, Member, SweepSpec, check_spec, expand, spec_from_dict, spec_to_dict


@dataclasses.dataclass
class SweepResult:
    """Final rows (one per run); per group trained now: the stacked final host state and the layout of
    its run axis over this process's devices, ``[(first run, end, device id)]`` (padding included)."""

    runs: list[dict]
    sweep_dir: str | None
    status: str
    states: dict[int, Any]
    layouts: dict[int, list[tuple[int, int, int]]]


def _eval_keys(seeds: np.ndarray, chunk: int) -> np.ndarray:
    """Per-run evaluation keys after ``chunk``, the same as a single run's (``Experiment.evaluate``)."""
    return np.stack([np.asarray(jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(int(s)), 1), chunk))
                     for s in seeds])


def _run_dirs(sweep_dir: str | None, group: Group) -> list[str | None]:
    return [None if sweep_dir is None else os.path.join(sweep_dir, "runs", m.name) for m in group.members]


def _restore_group(experiment: driver.Experiment, dirs: list[str], set_aside: bool) -> tuple[Any, int]:
    """Newest chunk at which every run of the group has a valid checkpoint: (stacked host state or None,
    chunk). Checkpoints newer than it are moved to ``damaged_checkpoints/`` (never deleted) if ``set_aside``."""
    checkpointers = [Checkpointer(os.path.join(d, "checkpoints")) for d in dirs]
    stacked, start = None, 0
    try:
        common = set.intersection(*(set(c.all_steps()) for c in checkpointers))
        abstract = experiment.abstract_state()
        for step in sorted(common, reverse=True):
            try:
                states = [c.restore(step, abstract)[0] for c in checkpointers]
            except CorruptCheckpointError as e:
                print(f"rlx: warning: {e}; trying an older sweep checkpoint", file=sys.stderr)
                continue
            stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *states)
            start = step
            break
        newer = [[s for s in c.all_steps() if s > start] for c in checkpointers]
    finally:
        for c in checkpointers:
            c.close()
    if set_aside:
        for d, steps in zip(dirs, newer):
            driver._set_aside(d, steps)
    return stacked, start


class _RunFiles:
    """The run directories of a group's members: metrics writers, checkpointers, summaries (process 0)."""

    def __init__(self, members: tuple[Member, ...], dirs: list[str | None], config: driver.RunConfig, start: int):
        self.members, self.dirs = members, dirs
        active = jax.process_index() == 0 and dirs[0] is not None
        self.writers = [MetricsWriter(d, config.tensorboard, resume_after_chunk=start) if active else None
                        for d in dirs]
        self.checkpointers = [Checkpointer(os.path.join(d, "checkpoints"), config.keep_checkpoints) if active
                              else None for d in dirs]
        self.rows: list[list[dict]] = [list(w.rows) if w else [] for w in self.writers]

    def write(self, r: int, row: dict) -> None:
        self.rows[r].append(row)
        if self.writers[r] is not None:
            self.writers[r].write(row)

    def save(self, r: int, chunks_done: int, env_steps: int, state: Any) -> None:
        if self.checkpointers[r] is not None:
            meta = {"chunks_done": chunks_done, "env_steps": env_steps, "rlx_config": to_dict(self.members[r].config)}
            self.checkpointers[r].save(chunks_done, state, meta)

    def close(self, experiment: driver.Experiment, statuses: list[str], seconds: float) -> None:
        for r, (writer, checkpointer) in enumerate(zip(self.writers, self.checkpointers)):
            if checkpointer is not None:
                checkpointer.wait()
                checkpointer.close()
            if writer is not None:
                writer.close()
                driver._write_summary(self.dirs[r], experiment, self.rows[r], statuses[r], seconds)


def run_group(
    group: Group,
    sweep_dir: str | None,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    num_devices: int | None = None,
) -> tuple[list[dict], Any, str, list[tuple[int, int, int]]]:
    """Trains every run of ``group`` together; returns (final row per run, stacked host state of the real
    runs, status, layout), where layout lists ``(first run, end, device id)`` for this process's shards."""
    experiment = driver.Experiment(group.config)
    plan, members = experiment.plan, group.members
    writer_process = jax.process_index() == 0  # process 0 writes every run's files
    placement = Placement(len(members), num_devices)
    dirs = _run_dirs(sweep_dir, group)
    values = traced_values(group)
    seeds = np.array([m.seed for m in members])

    start, host_state = 0, None
    if resume and sweep_dir is not None:
        host_state, start = _restore_group(experiment, dirs, set_aside=writer_process)
    if writer_process and sweep_dir is not None:
        for member, d in zip(members, dirs):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.yaml"), "w") as f:
                yaml.safe_dump(to_dict(member.config), f, sort_keys=False)

    start_time = time.perf_counter()
    if host_state is None:
        keys = np.stack([np.asarray(jax.random.fold_in(jax.random.PRNGKey(int(s)), 0)) for s in seeds])
        tic = time.perf_counter()
        init = jax.jit(jax.vmap(experiment.init_fn), out_shardings=placement.sharding)
        state = init(placement.put(keys), placement.put(values))
        experiment.compile_seconds += time.perf_counter() - tic
    else:
        state = placement.put(host_state)
    state = jax.block_until_ready(state)  # compile_seconds below counts compiling only, not init still running

    tic = time.perf_counter()
    chunk_fn = jax.jit(jax.vmap(experiment.chunk_fn, in_axes=(0, None)),
                       in_shardings=(placement.sharding, placement.replicated),
                       out_shardings=(placement.sharding, placement.sharding),
                       donate_argnums=() if jax.default_backend() == "cpu" else (0,))
    chunk_fn = chunk_fn.lower(state, jnp.int32(0)).compile()
    evaluate = jax.jit(jax.vmap(experiment.evaluate_fn), out_shardings=placement.sharding)
    evaluate = evaluate.lower(state, placement.put(_eval_keys(seeds, 0))).compile()
    experiment.compile_seconds += time.perf_counter() - tic

    files = _RunFiles(members, dirs, group.config, start)
    statuses = ["completed"] * len(members)
    bar = None
    if progress and writer_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.total_env_steps * len(members), initial=plan.env_steps(start) * len(members),
                   unit="step", unit_scale=True, dynamic_ncols=True,
                   desc=f"{group.config.algo} {group.config.env.name} group {group.index} ({len(members)} runs)")
    sweep_status = "completed"
    try:
        for chunk in range(start, plan.num_chunks):
            tic = time.perf_counter()
            num_active = plan.iterations_done(chunk + 1) - plan.iterations_done(chunk)
            state, metrics = chunk_fn(state, jnp.int32(num_active))
            metrics = placement.get(metrics)
            seconds = time.perf_counter() - tic
            last = chunk + 1 == plan.num_chunks
            evaluated = None
            if last or (group.config.eval_every and (chunk + 1) % group.config.eval_every == 0):
                evaluated = placement.get(evaluate(state, placement.put(_eval_keys(seeds, chunk))))
            for r in range(len(members)):
                if statuses[r] == "diverged":
                    continue
                run_metrics = {k: float(v[r]) for k, v in metrics.items()}
                bad = driver._divergence(run_metrics)
                if bad is not None:
                    statuses[r] = "diverged"  # the run's files stop at its last finite chunk; the others go on
                    if writer_process:
                        print(f"rlx: warning: run {members[r].name} diverged (non-finite {bad}) in chunk {chunk + 1}; "
                              "it is marked diverged and the other runs continue", file=sys.stderr)
                    continue
                row = driver.chunk_row(experiment, chunk, run_metrics, seconds)
                if evaluated is not None:
                    row.update({k: float(v[r]) for k, v in evaluated.items()})
                files.write(r, row)
            stopping = stop_after_chunks is not None and chunk + 1 - start >= stop_after_chunks and not last
            due = last or stopping or (group.config.checkpoint_every and (chunk + 1) % group.config.checkpoint_every == 0)
            if due and sweep_dir is not None:
                host = placement.get(state)  # every process takes part in the gather
                for r in range(len(members)):
                    if statuses[r] != "diverged":
                        files.save(r, chunk + 1, plan.env_steps(chunk + 1), jax.tree.map(lambda x: x[r], host))
            if bar is not None:
                bar.update(plan.env_steps(chunk + 1) * len(members) - bar.n)
                finite = [rows[-1]["eval/episode_return"] for rows in files.rows
                          if rows and "eval/episode_return" in rows[-1]]
                steps = (plan.env_steps(chunk + 1) - plan.env_steps(chunk)) * len(members)
                bar.set_postfix({"steps/s": f"{steps / max(seconds, 1e-9):.3g}",
                                 **({"eval mean": f"{np.mean(finite):.4g}"} if finite else {})})
            if stopping:
                sweep_status = "stopped"
                statuses = ["stopped" if s == "completed" else s for s in statuses]
                break
    except BaseException:
        statuses = [s if s == "diverged" else "interrupted" for s in statuses]
        sweep_status = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.close()
        files.close(experiment, statuses, time.perf_counter() - start_time)
    finals = [_final_row(member, status, rows, experiment.compile_seconds)
              for member, status, rows in zip(members, statuses, files.rows)]
    leaf = jax.tree.leaves(state)[0]
    layout = sorted((s.index[0].start or 0, s.index[0].stop or placement.padded, s.device.id)
                    for s in leaf.addressable_shards)
    return finals, placement.get(state), sweep_status, layout


def traced_values(group: Group) -> dict[str, np.ndarray]:
    """Per-run values ``[runs]`` of the group's traced fields; an optional field that is off (``None``) in
    every run is left out (it is off in the compiled program), and mixing it with numbers is an error."""
    values = {}
    for name in traced_fields(type(group.config.agent)):
        column = [getattr(m.config.agent, name) for m in group.members]
        if all(v is None for v in column):
            continue
        if any(v is None for v in column):
            raise ConfigError(f"agent.{name}: is null (off) in some runs of the sweep and set in others; "
                              "put null under groups instead")
        values[name] = np.array(column, np.float32)
    return values


def _group_done(sweep_dir: str, group: Group) -> bool:
    for d in _run_dirs(sweep_dir, group):
        path = os.path.join(d, "summary.json")
        if not os.path.exists(path):
            return False
        with open(path) as f:
            if json.load(f).get("status") not in ("completed", "diverged"):
                return False
    return True


def _final_rows(sweep_dir: str, group: Group) -> list[dict]:
    """Final rows of a finished group, read back from its run directories."""
    finals = []
    for member, d in zip(group.members, _run_dirs(sweep_dir, group)):
        with open(os.path.join(d, "summary.json")) as f:
            summary = json.load(f)
        finals.append(_final_row(member, summary["status"], read_metrics(d), summary.get("compile_seconds")))
    return finals


def _final_row(member: Member, status: str, rows: list[dict], compile_seconds: float | None) -> dict:
    """A run's line in the sweep's summary table."""
    final = rows[-1] if rows else {}
    return {"run": member.name, "group": member.group, "setting": member.setting, "seed": member.seed,
            **member.values, "status": status, "env_steps": final.get("env_steps", 0),
            "train/episode_return": final.get("train/episode_return"),
            "eval/episode_return": final.get("eval/episode_return"), "compile_seconds": compile_seconds}


def setting_table(runs: list[dict], metric: str = "eval/episode_return") -> list[dict]:
    """One row per setting: its swept values, number of seeds, IQM and 95% stratified-bootstrap CI of the
    final ``metric`` over seeds; diverged runs and runs without a finite value are counted in ``missing``."""
    table = []
    for setting in sorted({r["setting"] for r in runs}):
        members = [r for r in runs if r["setting"] == setting]
        scores = np.array([r[metric] for r in members if r["status"] != "diverged"
                           and r.get(metric) is not None and math.isfinite(r[metric])])
        skip = {"run", "seed", "status", "env_steps", "train/episode_return", "eval/episode_return", "compile_seconds"}
        row = {k: v for k, v in members[0].items() if k not in skip}
        row.update({"seeds": len(members), "missing": len(members) - scores.size})
        if scores.size:
            estimate, low, high = stats.bootstrap_ci(scores)
            row.update({f"{metric} IQM": estimate, "ci_low": low, "ci_high": high})
        table.append(row)
    return table


def _write_table(path: str, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table of ``rows`` (floats to 4 significant digits)."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _prepare_sweep_dir(sweep_dir: str, overwrite: bool) -> None:
    if os.path.exists(os.path.join(sweep_dir, "sweep.yaml")):
        if not overwrite:
            raise ConfigError(f"--out {sweep_dir}: already holds a sweep; pass --resume {sweep_dir} to continue it "
                              "or --overwrite to replace it")
        shutil.rmtree(sweep_dir)
    driver._prepare_run_dir(sweep_dir, overwrite=False)


def run(
    spec: SweepSpec,
    sweep_dir: str | None = None,
    *,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    overwrite: bool = False,
    num_devices: int | None = None,
    resume: bool = False,
) -> SweepResult:
    """Runs (or with ``resume`` continues) a sweep; with ``sweep_dir`` None nothing is written.

    Groups run one after another. Returns every run's final row and each group's stacked final state.
    """
    check_spec(spec)
    groups = expand(spec)  # validates every run before anything compiles
    primary = jax.process_index() == 0
    if sweep_dir is not None and primary and not resume:
        _prepare_sweep_dir(sweep_dir, overwrite)
        with open(os.path.join(sweep_dir, "sweep.yaml"), "w") as f:
            yaml.safe_dump(spec_to_dict(spec), f, sort_keys=False)
    runs, states, layouts, status = [], {}, {}, "completed"
    for group in groups:
        if resume and sweep_dir is not None and _group_done(sweep_dir, group):
            runs += _final_rows(sweep_dir, group)
            continue
        finals, states[group.index], status, layouts[group.index] = run_group(
            group, sweep_dir, resume=resume, progress=progress, stop_after_chunks=stop_after_chunks,
            num_devices=num_devices)
        runs += finals
        if status != "completed":
            break
    if sweep_dir is not None and primary:
        table = [{k: v for k, v in r.items() if k != "compile_seconds"} for r in runs]
        _write_table(os.path.join(sweep_dir, "summary.csv"), table)
        with open(os.path.join(sweep_dir, "summary.json"), "w") as f:
            json.dump({"status": status, "runs": runs}, f, indent=2)
        _write_table(os.path.join(sweep_dir, "settings.csv"), setting_table(runs))
    return SweepResult(runs=runs, sweep_dir=sweep_dir, status=status, states=states, layouts=layouts)


def load_spec(sweep_dir: str) -> SweepSpec:
    """The spec saved in ``SWEEP_DIR/sweep.yaml``."""
    path = os.path.join(sweep_dir, "sweep.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"--resume {sweep_dir}: no sweep.yaml there; not an rlx sweep directory")
    return spec_from_dict(load_yaml(path))


def resume(sweep_dir: str, **kwargs: Any) -> SweepResult:
    """Continues the sweep in ``sweep_dir``: finished groups are kept, the others restart from the newest
    chunk that every one of their runs has a valid checkpoint for."""
    return run(load_spec(sweep_dir), sweep_dir, resume=True, **kwargs)
