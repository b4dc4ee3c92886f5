"""The host side of training, shared by ``rlx train`` (one run) and ``rlx sweep`` (many runs trained as one
vmapped program): run directories and the loop over jitted chunks that, between chunks, logs, evaluates,
checkpoints and watches for divergence on the plan's cadence. It never steps an env or takes a gradient.

Run directory contract (stable; scripts and notebooks rely on it)::

    RUN_DIR/config.yaml         the resolved RunConfig
    RUN_DIR/metrics.jsonl       one JSON object per chunk: chunk, env_steps, steps_per_second,
                                train/episode_return, ... and eval/episode_return when evaluated
    RUN_DIR/metrics.csv         the same rows as CSV
    RUN_DIR/tensorboard/        TensorBoard event files
    RUN_DIR/wandb/, wandb_id    with logging.wandb: the W&B run's files (offline: for `wandb sync`) and its id
    RUN_DIR/checkpoints/<N>/    Orbax checkpoint of the whole train state after N chunks
    RUN_DIR/damaged_checkpoints/  checkpoints a resume found damaged (moved here, never deleted)
    RUN_DIR/summary.json        written when the run stops: status, env_steps, final evaluation, timings
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

from rlx import compile_cache
from rlx.algos.common import GRADIENT_STEPS
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError, to_dict
from rlx.metrics_log import MetricsWriter, WandbLogger

SUMMED_METRICS = ("episode_return_sum", "episode_length_sum", "episode_count", GRADIENT_STEPS)
# metrics of collection, not of the gradient steps: averaged over every iteration of a chunk, warm-up included
COLLECTION_METRICS = ("epsilon", "reward_scale")
NOT_LOGGED = ("params_finite", "first_nonfinite_iteration")


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter."""


# What rlx writes at the top of a run's and a sweep's directory (``rlx plot`` adds the images; ``rlx bench`` adds
# ``entry.json`` to its entries' sweeps). ``--overwrite`` removes a directory only when it holds nothing else.
RUN_ENTRIES = frozenset(
    {"config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "checkpoints", "damaged_checkpoints"}
    | {"tensorboard", "wandb", "wandb_id", "curve.png"}
)
SWEEP_ENTRIES = frozenset(
    {"sweep.yaml", "summary.csv", "summary.json", "settings.csv", "runs", "curves.png", "final.png", "entry.json"}
)
_ENTRIES = {"a run": RUN_ENTRIES, "a sweep": SWEEP_ENTRIES}


def _holds(path: str) -> str | None:
    """``"a sweep"``, ``"a run"`` or None: what the directory's marker file (``sweep.yaml``, ``config.yaml``)
    says it holds, if that file is rlx's (a mapping with the keys rlx writes)."""
    for marker, what, keys in (("sweep.yaml", "a sweep", {"config"}), ("config.yaml", "a run", {"algo", "agent"})):
        file = os.path.join(path, marker)
        if os.path.isfile(file):
            try:
                with open(file) as f:
                    data = yaml.safe_load(f)
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                data = None
            return what if isinstance(data, dict) and keys <= set(data) else f"a {marker} that rlx did not write"
    return None


def _foreign(path: str, what: str) -> list[str]:
    """The entries of ``path`` (a run's or a sweep's directory, with its runs' directories) rlx did not write."""

    def outside(folder: str, allowed: frozenset) -> list[str]:
        return sorted(n for n in os.listdir(folder) if n not in allowed and n.removesuffix(".tmp") not in allowed)

    foreign = outside(path, _ENTRIES[what])
    if what == "a run":
        return foreign
    runs = os.path.join(path, "runs")
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        run = os.path.join(runs, name)
        if not (re.fullmatch(r"h\d+-seed\d+", name) and os.path.isdir(run)):
            foreign.append(f"runs/{name}")
        else:
            foreign += [f"runs/{name}/{n}" for n in outside(run, RUN_ENTRIES)]
    return foreign


def _enclosing(path: str) -> tuple[str, str] | None:
    """The nearest folder above ``path`` that holds a sweep or a run, and which (``"a sweep"``, ``"a run"``), or
    None. A run counts only with files a run writes beside its ``config.yaml`` (a project folder holding an rlx
    config named config.yaml is not a run)."""
    here = os.path.abspath(path)
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        held = _holds(here)
        if held == "a sweep" or (
            held == "a run"
            and any(os.path.exists(os.path.join(here, n)) for n in ("metrics.jsonl", "checkpoints", "summary.json"))
        ):
            return here, held
    return None


def refuse_inside(path: str, flag: str = "--out") -> None:
    """A one-line ConfigError when ``path`` lies inside a sweep's or a run's directory (their files are rlx's:
    ``rlx eval SWEEP_DIR`` would count a run there, ``--overwrite`` would refuse the foreign folder)."""
    enclosing = _enclosing(path)
    if enclosing is not None:
        folder, what = enclosing
        writer = "rlx sweep" if what == "a sweep" else "rlx train"
        raise ConfigError(
            f"{flag} {path}: is inside the {what.split()[1]} {folder}, whose files {writer} writes; "
            f"choose an {flag} outside it"
        )


def print_notes(notes: list[str]) -> None:
    """``rlx: note: ...`` lines on stderr, each once, in order (rlx train, resume and sweep say them alike)."""
    for note in dict.fromkeys(notes):
        print(f"rlx: note: {note}", file=sys.stderr)


def prepare_dir(path: str, overwrite: bool, what: str = "a run") -> None:
    """Makes ``path`` ready for a new run (or sweep): refuses one that already holds a run or a sweep unless
    ``overwrite`` and it holds ``what`` and nothing rlx did not write there (so ``--overwrite`` never removes a
    user's files, or a sweep to make room for a run), and fails early if it cannot be written."""
    refuse_inside(path)
    held = _holds(path) if os.path.isdir(path) else None
    if held is not None:
        if not overwrite and held == what:
            raise ConfigError(
                f"--out {path}: already holds {what}; pass --resume {path} to continue it or --overwrite to replace it"
            )
        foreign = _foreign(path, what)
        if held != what or foreign:
            found = held if held != what else f"{what} and files rlx did not write there ({', '.join(foreign[:3])})"
            raise ConfigError(f"--out {path}: holds {found}; not replacing it with {what}: choose another --out")
        shutil.rmtree(path)
    elif os.path.isdir(path):  # no run or sweep there, but files a new one would write over
        clash = sorted(set(os.listdir(path)) & _ENTRIES[what])
        if clash:
            raise ConfigError(
                f"--out {path}: has {', '.join(clash[:3])}, which {what} would write over; choose another --out"
            )
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"--out {path}: not writable ({e.strerror})") from None


def refuse_file(path: str, flag: str = "--out") -> None:
    """A one-line ConfigError naming ``flag`` when ``path``, where a directory is to be written, is a file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a file; a directory is written there")


def refuse_run_or_sweep(path: str, what: str, flag: str = "--out") -> None:
    """A one-line ConfigError when ``path``, where ``what`` is to be written beside nothing of rlx's, holds a run
    or a sweep (``rlx bench``'s report directory)."""
    held = _holds(path) if os.path.isdir(path) else None
    if held is not None:
        raise ConfigError(f"{flag} {path}: holds {held}; {what} goes in a directory of its own: choose another {flag}")


def make_dir(path: str, flag: str = "--out") -> None:
    """``os.makedirs(path)``, with a one-line ConfigError naming ``flag`` when it cannot be made (a file in the way,
    no permission)."""
    refuse_file(path, flag)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{flag} {path}: not writable ({e.strerror})") from None


def write_config(path: str, config: Any) -> None:
    os.makedirs(path, exist_ok=True)
    write_yaml(os.path.join(path, "config.yaml"), to_dict(config))


def write_yaml(path: str, data: Any) -> None:
    """Writes ``data`` as YAML atomically: a value YAML cannot represent fails before the old file is touched,
    and a kill leaves the old file or the new one, never an empty one."""
    text = yaml.safe_dump(data, sort_keys=False)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_json(path: str, data: Any) -> None:
    """Writes ``data`` as JSON atomically (a kill leaves the old file or the new one)."""
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2)
    os.replace(path + ".tmp", path)


def set_aside(path: str, steps: list[int], why: str | None = None) -> None:
    """Moves checkpoints newer than the restored one to ``damaged_checkpoints/`` (kept, never deleted), so
    the resumed run can save those chunks again; the warning calls them damaged unless ``why`` says otherwise."""
    for step in steps:
        source = os.path.join(path, "checkpoints", str(step))
        target = os.path.join(path, "damaged_checkpoints", f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(source, target)
        moved = (
            f"moved checkpoint {source} to {target}: {why}" if why else f"moved damaged checkpoint {source} to {target}"
        )
        print(f"rlx: warning: {moved}", file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class Session:
    """When this process began working on some runs (before compiling their programs) and the compile cache's
    counts then: a summary's ``wall_seconds`` and ``compile_cache`` are this session's own."""

    started: float
    cache: dict

    @classmethod
    def begin(cls) -> Session:
        return cls(started=time.perf_counter(), cache=compile_cache.stats())

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started

    def cache_stats(self) -> dict:
        return compile_cache.stats(since=self.cache)


class RunDir:
    """The files of one run while it trains: metrics rows, checkpoints and, at the end, ``summary.json``.
    With ``path`` None, or ``active`` False (a non-writing process of a multi-process sweep), rows are
    kept in memory only. ``group``: the W&B group when the config names none (a sweep's name)."""

    def __init__(self, path: str | None, config: Any, start_chunk: int, active: bool = True, group: str | None = None):
        self.path, self.config = path, config
        writes = path is not None and active
        self.writer = None
        if writes:
            wandb = WandbLogger(path, config.logging, to_dict(config), group) if config.logging.wandb else None
            self.writer = MetricsWriter(path, config.tensorboard, resume_after_chunk=start_chunk, wandb=wandb)
        self.checkpointer = Checkpointer(os.path.join(path, "checkpoints"), config.keep_checkpoints) if writes else None
        self.rows: list[dict] = list(self.writer.rows) if self.writer else []

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if self.writer is not None:
            self.writer.write(row)

    def save(self, chunks_done: int, env_steps: int, state: Any) -> None:
        if self.checkpointer is not None:
            meta = {"chunks_done": chunks_done, "env_steps": env_steps, "rlx_config": to_dict(self.config)}
            self.checkpointer.save(chunks_done, state, meta)

    def latest_checkpoint(self) -> str | None:
        if self.checkpointer is None:
            return None
        self.checkpointer.wait()
        latest = self.checkpointer.latest()
        return None if latest is None else self.checkpointer.path(latest)

    def close(self, summary: dict, write_summary: bool = True) -> None:
        """Closes the files; writes ``summary.json`` unless ``write_summary`` is False (a resumed run that had
        nothing left to train keeps the summary, timings included, of the process that trained it)."""
        if self.checkpointer is not None:
            self.checkpointer.wait()
            self.checkpointer.close()
        if self.writer is not None:
            self.writer.close(exit_code=0 if summary["status"] in ("completed", "stopped") else 1)
            if not write_summary and os.path.exists(os.path.join(self.path, "summary.json")):
                return
            final = self.rows[-1] if self.rows else {}
            summary = {
                **summary,
                "env_steps": final.get("env_steps", 0),
                "eval/episode_return": final.get("eval/episode_return"),
                "train/episode_return": final.get("train/episode_return"),
            }
            write_json(os.path.join(self.path, "summary.json"), summary)


def run_status(run_dir: str) -> str | None:
    """The ``status`` a run's ``summary.json`` records (``completed``, ``diverged``, ...); None without a readable one."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    return summary.get("status") if isinstance(summary, dict) else None


def divergence(metrics: dict) -> str | None:
    """The non-finite quantities of a chunk's metrics (``params`` first), or None."""
    bad = [k for k, v in metrics.items() if k not in SUMMED_METRICS + NOT_LOGGED and not math.isfinite(v)]
    if metrics.get("params_finite", 1.0) < 0.5:
        bad.insert(0, "params")
    return ", ".join(bad) or None


def chunk_row(plan: Any, chunk_index: int, metrics: dict, seconds: float) -> dict:
    """The metrics row logged for a finished chunk."""
    steps = plan.env_steps(chunk_index + 1) - plan.env_steps(chunk_index)
    metrics = dict(metrics)
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
    if metrics.get(GRADIENT_STEPS) == 0:  # a chunk of warm-up: its update metrics were never computed
        row.update(
            {f"train/{k}": None for k in metrics if k not in (*NOT_LOGGED, *SUMMED_METRICS, *COLLECTION_METRICS)}
        )
    return row


def run_chunks(
    experiment: Any,
    state: Any,
    start_chunk: int,
    runs: list[RunDir],
    *,
    step: Callable[[Any, int], tuple[Any, list[dict]]],
    evaluate: Callable[[Any, int], list[dict]],
    host_states: Callable[[Any], list[Any]],
    stop_after_chunks: int | None = None,
    progress: bool = True,
    description: str = "",
    raise_on_divergence: bool = True,
    statuses: list[str] | None = None,
    between: Callable[[Any, int, list[dict | None]], Any] | None = None,
    session: Session,
) -> tuple[Any, list[str], str]:
    """Runs the plan's chunks from ``start_chunk`` for the runs in ``state`` (one, or a vmapped batch).

    ``step(state, chunk)`` runs one chunk and returns per-run metrics; ``evaluate(state, chunk)`` per-run
    evaluation results; ``host_states(state)`` per-run host copies for checkpoints (every process of a
    multi-process sweep must call it, so it is called whenever a checkpoint is due and runs have
    directories). A diverged run raises :class:`DivergenceError` (``raise_on_divergence``, one run) or is
    marked ``diverged`` while the others go on (``statuses``: runs already marked so before a resume).
    ``between(state, chunk, rows)``, if given, runs after each chunk's evaluation and before its rows are written
    and its checkpoint saved (rows: per run, None for a diverged one; it may add entries and fill a None) and
    returns the state the next chunk starts from and the diverged runs that continue in it (a sweep's
    population-based training). ``session``: begun before the runs' programs were compiled (summaries'
    ``wall_seconds`` include compiling, ``compile_cache`` counts these runs' programs). Returns ``(state, per-run statuses,
    status)``; every run's summary is written whatever happens.
    """
    config, plan = experiment.config, experiment.plan
    statuses = list(statuses) if statuses is not None else ["completed"] * len(runs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=plan.total_env_steps * len(runs),
            initial=plan.env_steps(start_chunk) * len(runs),
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            desc=description,
        )
    status, error = "completed", None
    try:
        for chunk in range(start_chunk, plan.num_chunks):
            compile_before = experiment.compile_seconds
            tic = time.perf_counter()
            state, metrics = step(state, chunk)
            seconds = time.perf_counter() - tic - (experiment.compile_seconds - compile_before)
            last = chunk + 1 == plan.num_chunks
            evaluated = evaluate(state, chunk) if plan.evaluates_after(chunk, config.eval_every) else None
            rows: list[dict | None] = [None] * len(runs)
            for r, run in enumerate(runs):
                if statuses[r] == "diverged":
                    continue
                bad = divergence(metrics[r])
                if bad is not None:
                    statuses[r] = "diverged"
                    note = f" ({experiment.divergence_note})" if getattr(experiment, "divergence_note", "") else ""
                    if raise_on_divergence:
                        raise DivergenceError(_divergence_message(plan, chunk, metrics[r], bad, run) + note)
                    print(
                        f"rlx: warning: run {os.path.basename(run.path or str(r))} diverged (non-finite {bad}) in "
                        f"chunk {chunk + 1}{note}; it is marked diverged and the other runs continue",
                        file=sys.stderr,
                    )
                    continue
                rows[r] = chunk_row(plan, chunk, metrics[r], seconds)
                if evaluated is not None:
                    rows[r].update(evaluated[r])
            if between is not None:
                state, revived = between(state, chunk, rows)
                for r in revived:
                    statuses[r] = "completed"  # continues as a copy of a healthy run (population-based training)
            for run, row in zip(runs, rows):
                if row is not None:
                    run.append(row)
            stopping = stop_after_chunks is not None and chunk + 1 - start_chunk >= stop_after_chunks and not last
            if plan.checkpoints_after(chunk, config.checkpoint_every, stopping) and any(r.path for r in runs):
                per_run = host_states(state)
                for r, run in enumerate(runs):
                    if statuses[r] != "diverged":
                        run.save(chunk + 1, plan.env_steps(chunk + 1), per_run[r])
            if bar is not None:
                _show_progress(bar, plan, chunk, runs, seconds)
            if stopping:
                status = "stopped"
                statuses = ["stopped" if s == "completed" else s for s in statuses]
                break
    except BaseException as e:
        status, error = stop_reason(e)
        statuses = [s if s == "diverged" else status for s in statuses]  # files already written stay intact
        raise
    finally:
        if bar is not None:
            bar.close()
        summary = session_summary(experiment, session, error)
        for run, run_status in zip(runs, statuses):
            run.close({"status": run_status, **summary}, write_summary=start_chunk < plan.num_chunks)
    return state, statuses, status


def stop_reason(error: BaseException) -> tuple[str, str | None]:
    """The ``status`` a run stopped by ``error`` records, and the error's one line where it was a failure:
    ``diverged`` (non-finite values), ``interrupted`` (Ctrl-C, ``sys.exit``) or ``failed`` (any other exception)."""
    if isinstance(error, DivergenceError):
        return "diverged", None
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "interrupted", None
    message = str(error).strip().splitlines()
    return "failed", type(error).__name__ + (f": {message[0]}" if message else "")


def session_summary(experiment: Any, session: Session, error: str | None = None) -> dict:
    """What every run's ``summary.json`` records of the experiment and this session (``status`` and the final
    values are the run's own), with ``error`` (``stop_reason``'s line) where the session failed."""
    return {
        "algo": experiment.config.algo,
        "env": experiment.config.env.name,
        "total_env_steps": experiment.plan.total_env_steps,
        "compile_seconds": experiment.compile_seconds,
        "compile_cache": session.cache_stats(),
        "wall_seconds": session.wall_seconds(),
    } | ({"error": error} if error else {})


def _divergence_message(plan: Any, chunk: int, metrics: dict, bad: str, run: RunDir) -> str:
    latest = run.latest_checkpoint()
    kept = f"; last finite checkpoint: {latest}" if latest else ""
    iteration = plan.iterations_done(chunk) + int(metrics["first_nonfinite_iteration"])
    where = (
        f"in iteration {iteration + 1} (env steps {iteration * plan.env_steps_per_iteration} to "
        f"{(iteration + 1) * plan.env_steps_per_iteration}, chunk {chunk + 1})"
    )
    if bad == "params":
        where = f"by the end of chunk {chunk + 1} (env step {plan.env_steps(chunk + 1)})"
    return f"training diverged: non-finite {bad} {where}; run stopped{kept}"


def _show_progress(bar: Any, plan: Any, chunk: int, runs: list[RunDir], seconds: float) -> None:
    bar.update(plan.env_steps(chunk + 1) * len(runs) - bar.n)
    steps = (plan.env_steps(chunk + 1) - plan.env_steps(chunk)) * len(runs)
    postfix = {"steps/s": f"{steps / max(seconds, 1e-9):.3g}"}
    latest = [run.rows[-1] for run in runs if run.rows and run.rows[-1]["chunk"] == chunk + 1]
    train = [row["train/episode_return"] for row in latest if row.get("train/episode_return") is not None]
    evaluated = [row["eval/episode_return"] for row in latest if "eval/episode_return" in row]
    if train:
        postfix["return"] = f"{sum(train) / len(train):.4g}"
    if evaluated:
        postfix["eval"] = f"{sum(evaluated) / len(evaluated):.4g}"
    bar.set_postfix(postfix)
