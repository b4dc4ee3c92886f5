"""Running a sweep: each group's runs trained together by one jitted ``vmap`` of the driver's chunk
function, sharded by :class:`~rlx.sweep.placement.Placement`; per-run files, summary tables and resume."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlx import driver, host, stats
from rlx.checkpoint import Checkpointer, CorruptCheckpointError
from rlx.config import ConfigError, check_stop_after_chunks, load_yaml, traced_fields
from rlx.metrics_log import read_metrics
from rlx.sweep import pbt
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
    table: list[dict] = dataclasses.field(default_factory=list)  # per setting (per group with pbt): IQM and CI
    compile_seconds: float = 0.0  # compiling by this call (the groups it trained), as summary.json
    compile_cache: dict = dataclasses.field(default_factory=dict)  # this call's cache requests and hits


def _eval_keys(seeds: np.ndarray, chunk: int) -> np.ndarray:
    """Per-run evaluation keys after ``chunk``: each seed's single-run key (``driver.eval_key``)."""
    return np.stack([np.asarray(driver.eval_key(int(s), chunk)) for s in seeds])


def _run_dirs(sweep_dir: str | None, group: Group) -> list[str | None]:
    return [None if sweep_dir is None else os.path.join(sweep_dir, "runs", m.name) for m in group.members]


def _check_checkpoint_configs(sweep_dir: str, groups: list[Group]) -> None:
    """Before a sweep resumes: every run's newest checkpoint was saved with the config sweep.yaml gives it now
    (an edited sweep.yaml is a ConfigError naming the fields, before anything trains or is moved aside)."""
    source = os.path.join(sweep_dir, "sweep.yaml")
    for group in groups:
        dirs = _run_dirs(sweep_dir, group)
        missing = [os.path.basename(d) for d in dirs if not os.path.isdir(d)]
        if missing and any(os.path.isdir(os.path.join(d, "checkpoints")) for d in dirs):
            raise ConfigError(
                f"{sweep_dir}/runs: group {group.index} has checkpoints but no folder for its runs "
                f"{', '.join(missing)} (removed or renamed, or seeds added to sweep.yaml); a sweep's runs resume together"
            )
        for member, run_dir in zip(group.members, dirs):
            if not os.path.isdir(os.path.join(run_dir, "checkpoints")):
                continue
            checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"))
            try:
                driver.check_checkpoint_config(checkpointer, member.config, source, resuming=True)
            finally:
                checkpointer.close()


def _diverged_before(dirs: list[str]) -> list[bool]:
    """Which runs a stopped or interrupted sweep had marked diverged (``summary.json``): they have no checkpoints
    after their divergence and are not trained again."""
    return [(_read_summary(d) or {}).get("status") == "diverged" for d in dirs]


def _waiting_row(plan: Any, chunk: int) -> dict:
    """The row a population's diverged run logs for 1-based ``chunk`` while it waits for a step."""
    return {"chunk": chunk, "env_steps": plan.env_steps(chunk), "diverged": True}


def _log_waiting(run_dir: str, plan: Any, chunk: int) -> None:
    """Completes a population's diverged run's metrics.jsonl with its waiting rows up to ``chunk`` (a run that
    diverged before 2026-12-05 has none: its log stops at the divergence); rewritten atomically, a line cut short
    by a kill left out as :func:`read_metrics` leaves it out."""
    rows = read_metrics(run_dir)
    missing = [_waiting_row(plan, c) for c in range((rows[-1]["chunk"] if rows else 0) + 1, chunk + 1)]
    if missing:
        path = os.path.join(run_dir, "metrics.jsonl")
        with open(path + ".tmp", "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows + missing)
        os.replace(path + ".tmp", path)


def _restore_group(
    experiment: driver.Experiment, group: Group, dirs: list[str], set_aside: bool, diverged: list[bool]
) -> tuple[Any, int]:
    """Newest chunk at which every run of the group that has not diverged has a valid checkpoint: (stacked host
    state or None, chunk); a diverged run's slot holds a copy of another run's state (it is neither logged nor
    saved again). Checkpoints newer than that chunk are moved to ``damaged_checkpoints/`` (never deleted) if
    ``set_aside``. A ConfigError, before anything is moved, when the runs share checkpoints and none of them
    restores, or when they share none although some run had saved more than the first checkpoint (its
    checkpoints removed?): starting over would set aside the others' progress and cut their logs."""
    healthy = [d for d, bad in zip(dirs, diverged) if not bad]
    checkpointers = [Checkpointer(os.path.join(d, "checkpoints")) for d in healthy]
    stacked, start = None, 0
    try:
        abstract = experiment.abstract_state()
        saved = [set(c.all_steps()) for c in checkpointers]
        common = set.intersection(*saved) if saved else set()
        first_due = experiment.plan.first_checkpoint(group.config.checkpoint_every)
        if not common and any(steps and max(steps) > first_due for steps in saved):
            lacking = [os.path.basename(d) for d, steps in zip(healthy, saved) if not steps]
            raise ConfigError(
                f"no checkpoint that every run of group {group.index} in {os.path.dirname(dirs[0])} saved: "
                f"{', '.join(lacking) or 'its runs'} lack the ones the others have (removed?); a sweep's runs resume "
                "together, and starting over would set the others' checkpoints aside: put the checkpoints back"
            )
        for step in sorted(common, reverse=True):
            try:
                states = [c.restore(step, abstract)[0] for c in checkpointers]
            except CorruptCheckpointError as e:
                print(f"rlx: warning: {e}; trying an older sweep checkpoint", file=sys.stderr)
                continue
            states = iter(states)
            states = [next(states) if not bad else None for bad in diverged]
            some = next(s for s in states if s is not None)
            states = [some if s is None else s for s in states]
            stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *states)
            start = step
            break
        if common and stacked is None:  # as for a run: an error, not a silent restart from scratch
            raise ConfigError(
                f"no valid checkpoint for group {group.index} in {os.path.dirname(dirs[0])}: none of the "
                f"{len(common)} chunks that all its runs saved restores in every run (damaged)"
            )
        newer = [[s for s in c.all_steps() if s > start] for c in checkpointers]
    finally:
        for c in checkpointers:
            c.close()
    if set_aside:
        for d, steps in zip(healthy, newer):
            why = f"newer than chunk {start}, the newest that every run of group {group.index} restores"
            host.set_aside(d, steps, why)  # valid or not: the group's runs continue from one chunk
    return stacked, start


def run_group(
    group: Group,
    sweep_dir: str | None,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    num_devices: int | None = None,
    experiment: driver.Experiment | None = None,
    population: pbt.PBTSpec | None = None,
    field_priors: tuple[Any, ...] = (),
) -> tuple[list[dict], Any, str, list[tuple[int, int, int]]]:
    """Trains every run of ``group`` together (``experiment``: the group's, if already built; ``population``:
    population-based training over its runs, resampling from ``field_priors``: :func:`pbt.priors`); returns (final row per run, stacked host state of the real runs,
    status, layout), where layout lists ``(first run, end, device id)`` for this process's shards."""
    experiment = experiment or driver.Experiment(group.config)
    session = host.Session.begin()  # the runs' summaries: wall time and cache counts of this group, compiling included
    plan, members = experiment.plan, group.members
    writer_process = jax.process_index() == 0  # process 0 writes every run's files
    placement = Placement(len(members), num_devices)
    dirs = _run_dirs(sweep_dir, group)
    values = traced_values(group)
    seeds = np.array([m.seed for m in members])

    start, host_state = 0, None
    diverged = [False] * len(members)
    if resume and sweep_dir is not None:
        diverged = _diverged_before(dirs)
        host_state, start = _restore_group(experiment, group, dirs, set_aside=writer_process, diverged=diverged)
        if host_state is None:  # the group starts over: every run trains again from its first chunk
            diverged = [False] * len(members)
        elif population is not None and writer_process:
            for d in (d for d, bad in zip(dirs, diverged) if bad):
                _log_waiting(d, plan, start)
    if writer_process and sweep_dir is not None:
        for member, d in zip(members, dirs):
            host.write_config(d, member.config)

    if host_state is None:
        keys = np.stack([np.asarray(driver.init_key(int(s))) for s in seeds])
        tic = time.perf_counter()
        init = jax.jit(jax.vmap(experiment.init_fn), out_shardings=placement.sharding)
        state = init(placement.put(keys), placement.put(values))
        experiment.compile_seconds += time.perf_counter() - tic
    else:
        state = placement.put(host_state)
    state = jax.block_until_ready(state)  # compile_seconds below counts compiling only, not init still running

    tic = time.perf_counter()
    chunk_fn = jax.jit(
        jax.vmap(experiment.chunk_fn, in_axes=(0, None)),
        in_shardings=(placement.sharding, placement.replicated),
        out_shardings=(placement.sharding, placement.sharding),
        donate_argnums=0,  # the replay buffers are updated in place, not copied each chunk
    )
    chunk_fn = chunk_fn.lower(state, jnp.int32(0)).compile()
    evaluate = jax.jit(jax.vmap(experiment.evaluate_fn), out_shardings=placement.sharding)
    evaluate = evaluate.lower(state, placement.put(_eval_keys(seeds, 0))).compile()
    experiment.compile_seconds += time.perf_counter() - tic

    name = None if sweep_dir is None else os.path.basename(os.path.abspath(sweep_dir))  # the runs' W&B group
    # a run that diverged before the resume keeps its files as they are, unless a population step may revive it
    frozen = [bad and population is None for bad in diverged]
    runs = [
        host.RunDir(d, m.config, start, active=writer_process and not still, group=name)
        for d, m, still in zip(dirs, members, frozen)
    ]

    def step(state, chunk):
        num_active = plan.iterations_done(chunk + 1) - plan.iterations_done(chunk)
        state, metrics = chunk_fn(state, jnp.int32(num_active))
        metrics = placement.get(metrics)
        return state, [{k: float(v[r]) for k, v in metrics.items()} for r in range(len(members))]

    def evaluate_runs(state, chunk):
        evaluated = placement.get(evaluate(state, placement.put(_eval_keys(seeds, chunk))))
        return [{k: float(v[r]) for k, v in evaluated.items()} for r in range(len(members))]

    def host_states(state):
        gathered = placement.get(state)  # every process takes part in the gather
        return [jax.tree.map(lambda x, r=r: x[r], gathered) for r in range(len(members))]

    description = f"{group.config.algo} {group.config.env.name} group {group.index} ({len(members)} runs)"
    state, statuses, sweep_status = host.run_chunks(
        experiment,
        state,
        start,
        runs,
        step=step,
        evaluate=evaluate_runs,
        host_states=host_states,
        stop_after_chunks=stop_after_chunks,
        progress=progress and writer_process,
        description=description,
        raise_on_divergence=False,
        statuses=["diverged" if bad else "completed" for bad in diverged],
        between=None
        if population is None
        else _population_step(population, group, placement, experiment, field_priors),
        session=session,
    )
    finals = [
        _final_row(member, status, read_metrics(d) if still else run.rows, experiment.compile_seconds)
        for member, status, run, d, still in zip(members, statuses, runs, dirs, frozen)
    ]
    leaf = jax.tree.leaves(state)[0]
    layout = sorted(
        (s.index[0].start or 0, s.index[0].stop or placement.padded, s.device.id) for s in leaf.addressable_shards
    )
    return finals, placement.get(state), sweep_status, layout


def _population_step(
    population: pbt.PBTSpec,
    group: Group,
    placement: Placement,
    experiment: driver.Experiment,
    field_priors: tuple[Any, ...],
) -> Any:
    """``run_chunks``'s ``between`` for population-based training: after each step's chunk, ranks the runs by
    their rows and exploits and explores (``pbt/source``: the index in the group of the run copied, -1 when
    kept); after every chunk, logs each run's values (``pbt/<field>``) of the perturbed fields and of the swept
    traced fields (a copy inherits its source's). A diverged run (row None) logs ``{"diverged": true}`` rows
    until a step replaces it; it is returned among the revived runs then."""
    plan = experiment.plan
    after = set(pbt.steps(population, plan.num_chunks))
    traced = traced_fields(type(group.config.agent))
    swept = [p for p in group.members[0].values if p.startswith("agent.") and p.removeprefix("agent.") in traced]
    logged = tuple(dict.fromkeys([*population.fields, *swept]))
    apply = jax.jit(
        lambda state, sources, factors, alive, fresh: pbt.apply(
            state, sources, factors, alive, population.fields, type(group.config.agent), fresh
        ),
        out_shardings=placement.sharding,
        donate_argnums=0,
    )

    def step(state: Any, chunk: int, rows: list[dict | None]) -> tuple[Any, list[int]]:
        alive = np.array([r is not None for r in rows])
        sources = np.arange(len(rows))
        if chunk in after:
            metric = population.metric
            scores = np.array([np.nan if r is None or r.get(metric) is None else r[metric] for r in rows], float)
            rng = pbt.generator(population, group.index, chunk)
            sources, factors, fresh = pbt.choose(
                scores,
                alive,
                population.fraction,
                population.perturb,
                len(population.fields),
                rng,
                population.resample,
                field_priors,
            )
            unscored = int(np.sum(alive & np.isnan(scores)))
            if unscored:
                print(
                    f"rlx: warning: population step after chunk {chunk + 1} (group {group.index}): {unscored} of "
                    f"{len(rows)} runs have no {metric} (no episode ended in the chunk); they are neither copied nor "
                    f"replaced, and {int(np.sum(sources != np.arange(len(rows))))} runs are",
                    file=sys.stderr,
                )
            state = apply(
                state,
                placement.put(sources.astype(np.int32)),
                placement.put(factors.astype(np.float32)),
                placement.put(alive),
                placement.put(fresh.astype(np.float32)),
            )
        revived = [r for r in range(len(rows)) if not alive[r] and sources[r] != r]
        for r in revived:
            rows[r] = {"chunk": chunk + 1, "env_steps": plan.env_steps(chunk + 1)}
            print(
                f"rlx: diverged run {group.members[r].name} continues as a copy of {group.members[sources[r]].name} "
                f"(population-based training, after chunk {chunk + 1})",
                file=sys.stderr,
            )
        values = pbt.values(placement.get(state.hparams), logged)
        for r, row in enumerate(rows):
            if row is None:  # still diverged: one row per chunk keeps its log whole for a later revival or resume
                rows[r] = _waiting_row(plan, chunk + 1)
                continue
            if chunk in after:
                row["pbt/source"] = -1 if sources[r] == r else int(sources[r])
            row.update({name: float(column[r]) for name, column in values.items()})
        return state, revived

    return step


def checked_experiments(
    groups: list[Group], num_devices: int | None = None, population: pbt.PBTSpec | None = None
) -> dict[int, driver.Experiment]:
    """Each group's experiment, by group index, with ``num_devices`` (and ``population``, population-based
    training) checked for it: every group's env made and checked against its algorithm and networks, nothing
    compiled (what a sweep, ``--dry-run`` and ``rlx bench`` check before anything is written or trained)."""
    experiments = {}
    for group in groups:
        experiments[group.index] = driver.Experiment(group.config)
        Placement(len(group.members), num_devices)
        traced_values(group)  # a traced field null in some runs and set in others
        if population is not None:
            plan = experiments[group.index].plan
            pbt.check_group(population, plan, group.config, len(group.members), group.index)
    _check_axes_are_read(groups, experiments)
    return experiments


def _check_processes_agree(spec: SweepSpec, options: dict) -> None:
    """In a multi-process sweep, a ConfigError on every process unless all were given the same sweep and options
    (a process given another grid trained its half of the runs with its values under process 0's labels; another
    run count aborted the collectives with a C++ trace); nothing to check with one process."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    text = json.dumps({"spec": spec_to_dict(spec), **options}, sort_keys=True, default=str)
    mine = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
    every = np.asarray(multihost_utils.process_allgather(mine))  # [processes, 32]
    others = [p for p in range(len(every)) if not np.array_equal(every[p], every[0])]
    if others:
        raise ConfigError(
            f"--coordinator: process(es) {', '.join(map(str, others))} of {len(every)} were given another sweep or "
            "other options (--stop-after-chunks, --devices, --resume, --overwrite) than process 0; start every "
            "process with the same command"
        )


def _check_processes_ready(failure: ConfigError | None) -> None:
    """Raises ``failure``, this process's error before training; in a multi-process sweep also a ConfigError on the
    processes whose checks passed when another's failed (process 0 refusing ``--out`` left the others waiting in
    their first collective, to end in a C++ abort after JAX's heartbeat timeout)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        failed = np.asarray(multihost_utils.process_allgather(np.array([failure is not None])))[:, 0]
        others = [p for p in np.flatnonzero(failed) if p != jax.process_index()]
        if failure is None and others:
            raise ConfigError(
                f"--coordinator: process(es) {', '.join(map(str, others))} stopped before training (see their "
                "message); nothing was trained"
            )
    if failure is not None:
        raise failure


def print_notes(experiments: dict[int, driver.Experiment]) -> None:
    """The groups' notes on stderr as ``rlx train`` says them (the budget's rounding, the chunks' count, unread
    settings), each once, in group order."""
    host.print_notes([note for e in experiments.values() for note in e.notes])


def _check_axes_are_read(groups: list[Group], experiments: dict[int, driver.Experiment]) -> None:
    """A ConfigError for a swept field that training never reads in any group (its settings would be copies of
    one another); a warning naming the groups where it is unread, when it is read in others. A traced axis is
    swept in the groups where it varies, a static one (``groups:``) in every group."""
    unread: dict[str, dict[int, str]] = {}  # field -> {group index: why}
    swept: dict[str, int] = {}  # field -> groups where it varies
    firsts = [group.members[0].values for group in groups]
    across = {p for p in firsts[0] if any(first[p] != firsts[0][p] for first in firsts)}
    for group in groups:
        first, why = group.members[0].values, driver.unread_reasons(group.config, experiments[group.index].env)
        for path in (p for p in first if p in across or any(m.values[p] != first[p] for m in group.members)):
            swept[path] = swept.get(path, 0) + 1
            if path in why:
                unread.setdefault(path, {})[group.index] = why[path]
    for path, where in unread.items():
        reason = next(iter(where.values()))
        if len(where) == swept[path]:
            raise ConfigError(
                f"{path}: swept, but training never reads it ({reason}); its settings would train identical runs"
            )
        print(
            f"rlx: warning: {path} is never read in group(s) {', '.join(map(str, where))} ({reason}); its settings "
            "there train identical runs",
            file=sys.stderr,
        )


def traced_values(group: Group) -> dict[str, np.ndarray]:
    """Per-run values ``[runs]`` of the group's traced fields; an optional field that is off (``None``) in
    every run is left out (it is off in the compiled program), and mixing it with numbers is an error."""
    values = {}
    for name in traced_fields(type(group.config.agent)):
        column = [getattr(m.config.agent, name) for m in group.members]
        if all(v is None for v in column):
            continue
        if any(v is None for v in column):
            raise ConfigError(
                f"agent.{name}: is null (off) in some runs of the sweep and set in others; "
                "put null under groups instead"
            )
        values[name] = np.array(column, np.float32)
    return values


def _read_summary(run_dir: str) -> dict | None:
    """A run's ``summary.json`` (None if there is none); a file that is not a JSON object is a ConfigError."""
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot be read ({type(e).__name__}); restore or remove it") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path}: expected a JSON object; restore or remove it")
    return summary


def _group_done(sweep_dir: str, group: Group) -> bool:
    for d in _run_dirs(sweep_dir, group):
        summary = _read_summary(d)
        if summary is None or summary.get("status") not in ("completed", "diverged"):
            return False
    return True


def _final_rows(sweep_dir: str, group: Group) -> list[dict]:
    """Final rows of a finished group, read back from its run directories."""
    return [_row_from_files(member, d) for member, d in zip(group.members, _run_dirs(sweep_dir, group))]


def _final_row(member: Member, status: str, rows: list[dict], compile_seconds: float | None) -> dict:
    """A run's line in the sweep's summary table."""
    final = rows[-1] if rows else {}
    return {
        "run": member.name,
        "group": member.group,
        "setting": member.setting,
        "seed": member.seed,
        **member.values,
        "status": status,
        "env_steps": final.get("env_steps", 0),
        "train/episode_return": final.get("train/episode_return"),
        "eval/episode_return": final.get("eval/episode_return"),
        **{k: v for k, v in final.items() if k.startswith("pbt/") and k != "pbt/source"},  # the values trained last
        "compile_seconds": compile_seconds,
    }


NOT_COUNTED = "not counted"  # how a run's status starts when its value is kept out of its setting's IQM
NOT_STARTED = "not started"  # a run of a group after the one a sweep stopped in


def setting_table(runs: list[dict], metric: str = "eval/episode_return", spec: SweepSpec | None = None) -> list[dict]:
    """One row per setting: its swept values, number of seeds, IQM and 95% stratified-bootstrap CI of the
    final ``metric`` over seeds; diverged runs, runs not counted and runs without a finite value are counted in
    ``missing``. With population-based training (``spec.pbt``) no run keeps its setting: one row per group (its
    population; ``runs`` counts them, in place of ``seeds``), without the vmapped axes' starting values."""
    if spec is None and any(k.startswith("pbt/") for r in runs for k in r):  # per starting setting: meaningless
        raise ConfigError(
            "setting_table: these runs trained as populations (pbt/ columns), so no run kept its starting setting; "
            "pass spec= (one row per population) or use result.table"
        )
    by = "setting" if spec is None or spec.pbt is None else "group"
    moved = set() if by == "setting" else {"setting", *spec.grid, *spec.random}
    table = []
    for setting in sorted({r[by] for r in runs}):
        members = [r for r in runs if r[by] == setting]
        scores = np.array(
            [
                r[metric]
                for r in members
                if r["status"] != "diverged"
                and not r["status"].startswith(NOT_COUNTED)
                and r.get(metric) is not None
                and math.isfinite(r[metric])
            ]
        )
        skip = {"run", "seed", "status", "env_steps", "train/episode_return", "eval/episode_return", "compile_seconds"}
        row = {k: v for k, v in members[0].items() if k not in skip and k not in moved and not k.startswith("pbt/")}
        row.update({"seeds" if by == "setting" else "runs": len(members), "missing": len(members) - scores.size})
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


def run(
    spec: SweepSpec,
    sweep_dir: str | None = None,
    *,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    overwrite: bool = False,
    num_devices: int | None = None,
    resume: bool = False,
    experiments: dict[int, driver.Experiment] | None = None,
) -> SweepResult:
    """Runs (or with ``resume`` continues) a sweep; with ``sweep_dir`` None nothing is written.

    Groups run one after another. Returns every run's final row and each group's stacked final state.
    ``experiments``: what :func:`checked_experiments` returned for this spec and ``num_devices``, if already
    called (its envs are not made again).
    """
    check_stop_after_chunks(stop_after_chunks)
    check_spec(spec)
    groups = expand(spec)  # validates every run before anything compiles
    # before the sweep directory is prepared, so a pair that cannot train fails before --overwrite removes a sweep
    if experiments is None:
        experiments = checked_experiments(groups, num_devices, spec.pbt)
    options = {"stop_after_chunks": stop_after_chunks, "num_devices": num_devices, "resume": resume}
    _check_processes_agree(spec, {**options, "overwrite": overwrite})
    primary, failure = jax.process_index() == 0, None
    try:  # a check that fails on one process only must stop the others too, before they wait in a collective
        if resume and sweep_dir is not None:
            _check_checkpoint_configs(sweep_dir, groups)
        if primary and not resume:
            print_notes(experiments)
        if sweep_dir is not None and primary and not resume:
            host.prepare_dir(sweep_dir, overwrite, what="a sweep")
            host.write_yaml(os.path.join(sweep_dir, "sweep.yaml"), spec_to_dict(spec))
    except ConfigError as error:
        failure = error
    _check_processes_ready(failure)
    runs, states, layouts, status = [], {}, {}, "completed"
    session, trained = host.Session.begin(), []

    def timings() -> dict:
        compiled = sum(experiments[i].compile_seconds for i in trained)
        return {
            "compile_seconds": compiled,
            "compile_cache": session.cache_stats(),
            "wall_seconds": session.wall_seconds(),
        }

    try:
        for group in groups:
            if status != "completed":  # stopped in an earlier group: its runs are listed, so tables count every run
                runs += [_final_row(member, NOT_STARTED, [], None) for member in group.members]
                continue
            if resume and sweep_dir is not None and _group_done(sweep_dir, group):
                runs += _final_rows(sweep_dir, group)
                continue
            trained.append(group.index)
            finals, states[group.index], status, layouts[group.index] = run_group(
                group,
                sweep_dir,
                resume=resume,
                progress=progress,
                stop_after_chunks=stop_after_chunks,
                num_devices=num_devices,
                experiment=experiments[group.index],
                population=spec.pbt,
                field_priors=() if spec.pbt is None else pbt.priors(spec.pbt, spec.grid, spec.random),
            )
            runs += finals
    except KeyboardInterrupt:  # the tables of what the runs' own files say, as a stopped sweep writes them
        if sweep_dir is not None and primary:
            listed = {r["run"] for r in runs}
            for group in groups:
                runs += [
                    _row_from_files(m, d)
                    for m, d in zip(group.members, _run_dirs(sweep_dir, group))
                    if m.name not in listed
                ]
            _write_results(sweep_dir, "interrupted", timings(), runs, spec)
        raise
    times = timings()
    table = _write_results(sweep_dir if primary else None, status, times, runs, spec)
    return SweepResult(
        runs=runs,
        sweep_dir=sweep_dir,
        status=status,
        states=states,
        layouts=layouts,
        table=table,
        compile_seconds=times["compile_seconds"],
        compile_cache=times["compile_cache"],
    )


def _write_results(sweep_dir: str | None, status: str, timings: dict, runs: list[dict], spec: SweepSpec) -> list[dict]:
    """Writes ``summary.csv``, ``summary.json`` (``status``, ``timings``, the runs' rows) and ``settings.csv`` into
    ``sweep_dir`` (None: nothing); returns the settings' table."""
    if sweep_dir is not None:
        _write_table(
            os.path.join(sweep_dir, "summary.csv"),
            [{k: v for k, v in r.items() if k != "compile_seconds"} for r in runs],
        )
        host.write_json(os.path.join(sweep_dir, "summary.json"), {"status": status, **timings, "runs": runs})
    table = setting_table(runs, spec=spec)
    if sweep_dir is not None:
        _write_table(os.path.join(sweep_dir, "settings.csv"), table)
    return table


def _row_from_files(member: Member, run_dir: str) -> dict:
    """A run's line read back from its directory: what its ``summary.json`` says (``interrupted`` where an interrupt
    came before it had one), ``not started`` without a directory."""
    if not os.path.isdir(run_dir):
        return _final_row(member, NOT_STARTED, [], None)
    summary = _read_summary(run_dir) or {}
    return _final_row(
        member, summary.get("status", "interrupted"), read_metrics(run_dir), summary.get("compile_seconds")
    )


def load_spec(sweep_dir: str, what: str = "--resume") -> SweepSpec:
    """The spec saved in ``SWEEP_DIR/sweep.yaml``; ``what`` names the argument in the error."""
    path = os.path.join(sweep_dir, "sweep.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"{what} {sweep_dir}: no sweep.yaml there; not an rlx sweep directory")
    data = load_yaml(path, f"{what} {sweep_dir}:")
    if not data:  # an empty spec would be read as the defaults: another sweep than the one trained here
        raise ConfigError(f"{what} {sweep_dir}: its sweep.yaml is empty")
    return spec_from_dict(data)


def resume(sweep_dir: str, **kwargs: Any) -> SweepResult:
    """Continues the sweep in ``sweep_dir``: finished groups are kept, the others restart from the newest
    chunk that every one of their runs has a valid checkpoint for."""
    return run(load_spec(sweep_dir), sweep_dir, resume=True, **kwargs)
