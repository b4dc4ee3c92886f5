"""Reproduction suites: ``rlx bench SUITE`` runs each entry of a suite (a preset, a budget, seeds, a published
reference) as one vmapped ``rlx sweep`` and writes a Markdown report next to the references.

A suite is YAML (``rlx/configs/suites/<name>.yaml``, or any path)::

    description: what the tier is for
    entries:
      - name: ppo_cartpole              # the entry's folder and row
        config: ppo_cartpole            # a preset name or a YAML path
        steps: 524288                   # env steps per run (default: the preset's)
        seeds: 5
        set: {num_chunks: 4}            # run-config overrides (dotted paths)
        threshold: 475                  # steps to threshold: the first evaluation whose IQM over seeds reaches it
        reference: {low: 475, high: 500, source: "CartPole-v1's maximum is 500"}
        baseline: dqn_cartpole          # another entry on the same env: the report compares the two (rlx compare)

Per entry the report gives the IQM and 95% bootstrap CI of the final evaluation return, the IQM at a quarter,
half and three quarters of the budget (the last evaluation at or before each), steps to the threshold, wall and
compile time (wall summed over the sessions that trained an entry), env steps/s over all seeds, and whether the final IQM lies below, within or above the reference's
band. An entry with a ``baseline`` gets the IQM difference to it and the probability of improvement over it, each
with a 95% interval, and a verdict (:mod:`rlx.compare`). A finished entry is kept (its folder holds ``entry.json``), so a suite can be stopped and run again.
``tiny=True`` runs every entry for one iteration with two seeds, at most 4 envs and small batches and buffers: the
machinery end to end on a CPU, whatever the entry's budget.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import re
import sys
import time
from typing import Any

import numpy as np

from rlx import compare, driver, host, plot, stats, sweep
from rlx.config import ConfigError, load_yaml
from rlx.presets import SUITES_DIR, suite_names
from rlx.sweep.spec import _assign

FRACTIONS = (0.25, 0.5, 0.75)
_ENTRY_KEYS = ("name", "config", "steps", "seeds", "set", "threshold", "reference", "note", "baseline")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of a suite: a preset run for ``steps`` env steps over ``seeds`` seeds, with its reference."""

    name: str
    config: str
    steps: int | None = None
    seeds: int = 5
    set: dict = dataclasses.field(default_factory=dict)
    threshold: float | None = None
    reference: dict | None = None  # low, high, source
    note: str = ""
    baseline: str | None = None  # another entry's name: the report compares this one with it


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[Entry, ...]


def _entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with name and config, got {raw!r}")
    unknown = [k for k in raw if k not in _ENTRY_KEYS]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(_ENTRY_KEYS)}")
    for key in ("name", "config"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}.{key}: required, a string; got {raw.get(key)!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", raw["name"]):  # it names the entry's folder under --out
        raise ConfigError(
            f"{where}.name: letters, digits, '_', '-' and '.' only, not starting with '.'; got {raw['name']!r}"
        )
    where = f"{where} ({raw['name']})"
    for key in ("steps", "seeds"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{where}.{key}: must be an integer > 0; got {value!r}")
    reference = raw.get("reference")
    if reference is not None:
        if not isinstance(reference, dict) or set(reference) != {"low", "high", "source"}:
            raise ConfigError(f"{where}.reference: needs exactly low, high and source; got {reference!r}")
        for key in ("low", "high"):
            if isinstance(reference[key], bool) or not isinstance(reference[key], (int, float)):
                raise ConfigError(f"{where}.reference.{key}: must be a number; got {reference[key]!r}")
            if math.isnan(reference[key]):  # compared with anything it is False: the error named the other bound
                raise ConfigError(f"{where}.reference.{key}: must be a number, not NaN (.inf leaves a side open)")
        if not reference["low"] <= reference["high"]:
            raise ConfigError(f"{where}.reference.high: must be >= low = {reference['low']}; got {reference['high']}")
    threshold = raw.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold)
    ):
        raise ConfigError(f"{where}.threshold: must be a finite number (a return); got {threshold!r}")
    baseline = raw.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or baseline == raw["name"]):
        raise ConfigError(f"{where}.baseline: another entry's name; got {baseline!r}")
    if not isinstance(raw.get("set") or {}, dict):
        raise ConfigError(f"{where}.set: expected a mapping of field paths to values; got {raw['set']!r}")
    return Entry(**{**raw, "set": dict(raw.get("set") or {}), "seeds": raw.get("seeds") or 5})


def load_suite(name_or_path: str) -> Suite:
    """A packaged suite by name (``smoke``, ``cpu``, ``gpu``) or a suite YAML path; every entry's run config is
    validated (one-line :class:`ConfigError`) before anything runs."""
    path = name_or_path if os.path.isfile(name_or_path) else os.path.join(SUITES_DIR, f"{name_or_path}.yaml")
    if not os.path.exists(path):
        raise ConfigError(
            f"suite: {name_or_path!r} is neither a file nor a packaged suite ({', '.join(suite_names())})"
        )
    data = load_yaml(path, "suite") or {}
    if not isinstance(data.get("entries"), list) or not data["entries"]:
        raise ConfigError(f"suite {name_or_path}: needs a non-empty list under entries")
    entries = tuple(_entry(raw, f"entries[{i}]") for i, raw in enumerate(data["entries"]))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ConfigError(f"suite {name_or_path}: entry names must be unique; got {names}")
    suite = Suite(os.path.basename(path)[: -len(".yaml")], str(data.get("description", "")), entries)
    envs = {}
    for entry, where in zip(entries, (f"entries[{i}] ({e.name})" for i, e in enumerate(entries))):
        try:
            envs[entry.name] = driver.build_config(run_data(entry, tiny=False)).env.name
        except ConfigError as e:
            raise ConfigError(f"suite {name_or_path}, {where}: {e}") from None
    for i, entry in enumerate(entries):
        if entry.baseline is None:
            continue
        where = f"suite {name_or_path}, entries[{i}] ({entry.name}).baseline"
        if entry.baseline not in envs:
            raise ConfigError(f"{where}: no entry {entry.baseline!r}; entries: {', '.join(names)}")
        if envs[entry.baseline] != envs[entry.name]:
            raise ConfigError(
                f"{where}: {entry.baseline} trains on {envs[entry.baseline]}, this entry on {envs[entry.name]}; "
                "a baseline is on the same env"
            )
    return suite


def run_data(entry: Entry, tiny: bool) -> dict:
    """The entry's run-config data: its preset with ``steps`` and the ``set`` overrides; ``tiny``: one iteration
    in one chunk."""
    from rlx import presets

    data = presets.load(entry.config, field=f"entry {entry.name}: config")
    if entry.steps is not None:
        data["total_env_steps"] = entry.steps
    for path, value in entry.set.items():
        data = _assign(data, path, value)
    if tiny:
        data = _shrunk(data)
    return data


# Tiny runs: at most these values (the fields each algorithm has), so a GPU-sized entry runs on a CPU in seconds.
_TINY_AGENT = {"num_envs": 4, "unroll_length": 16, "num_minibatches": 1, "batch_size": 32, "buffer_size": 4096}


def _shrunk(data: dict) -> dict:
    """``data`` for one iteration in one chunk (off-policy: the iterations that fill each env's first n-step run),
    at most 4 envs, small batches and buffers, one eval episode."""
    from rlx import algos

    defaults = algos.get(data.get("algo", "ppo")).Config()
    given = data.get("agent") or {}

    def value(name: str) -> Any:
        return given.get(name, getattr(defaults, name))

    agent = dict(given)
    action_repeat = int((data.get("env") or {}).get("action_repeat") or 1)
    for name, cap in _TINY_AGENT.items():
        if hasattr(defaults, name):
            agent[name] = min(int(value(name)), cap)
    segment = int(given.get("gae_segment_length", 0))
    if segment:  # whole GAE segments: as many as fit in the tiny unroll, at least one
        agent["unroll_length"] = segment * max(1, _TINY_AGENT["unroll_length"] // segment)
    if hasattr(defaults, "utd_ratio"):
        # the fewest envs (a divisor of the entry's, at most 16) that still make whole gradient steps; else 4 envs
        # and one gradient step (an entry with 1,024 envs and 2 gradient steps per vector step)
        envs, rollout = int(value("num_envs")), int(value("rollout_length"))
        per_env = float(value("utd_ratio")) * rollout
        fits = [
            d
            for d in range(1, min(envs, 16) + 1)
            if envs % d == 0 and float(d * per_env).is_integer() and d * per_env >= 1
        ]
        agent["num_envs"] = next((d for d in fits if d >= _TINY_AGENT["num_envs"]), fits[0] if fits else min(envs, 4))
        if not fits:
            agent["utd_ratio"] = 1.0 / (agent["num_envs"] * rollout)
        # gradient steps start in the last iteration, once every env holds an n-step run (one iteration, unless
        # n_step > rollout_length: until 2026-12-04 those tiny runs sampled runs of empty buffer slots)
        agent["learning_starts"] = agent["num_envs"] * int(value("n_step"))
        per_iteration = agent["num_envs"] * rollout  # agent steps; the run trains whole iterations
        steps = -(-agent["learning_starts"] // per_iteration) * per_iteration * action_repeat  # env steps
    else:  # one iteration, as the config records it (it said total_env_steps 1, rounded up to an iteration)
        steps = agent.get("num_envs", 1) * agent.get("unroll_length", 1) * action_repeat  # (a plugin may lack them)
    return {**data, "agent": agent, "total_env_steps": steps, "num_chunks": 1, "eval_episodes": 1}


def _at_or_before(curve: dict, step: float) -> float | None:
    steps = curve["env_steps"]
    index = np.searchsorted(steps, step, side="right") - 1
    return float(curve["iqm"][index]) if index >= 0 else None


def _curve(entry_dir: str) -> dict:
    """The entry's IQM evaluation curve over its seeds (:func:`plot.curves` of its one setting)."""
    return next(iter(plot.curves(entry_dir).values()))


def judged(entry: Entry, entry_dir: str, row: dict, curve: dict | None = None) -> dict:
    """``row`` (a report row) with what the suite file says about it now: threshold and the steps the IQM curve
    (``curve``, if already read) took to reach it, reference band and verdict, note (so an edited band is not
    reported with an old verdict)."""
    estimate = row["final_iqm"]
    reached = None
    if entry.threshold is not None:
        curve = curve or _curve(entry_dir)
        hits = np.nonzero(curve["iqm"] >= entry.threshold)[0]
        reached = int(curve["env_steps"][hits[0]]) if hits.size else None
    verdict = "diverged" if row.get("diverged", 0) == row["seeds"] else ""
    if entry.reference is not None and math.isfinite(estimate):
        ref_low, ref_high = float(entry.reference["low"]), float(entry.reference["high"])
        verdict = "BELOW" if estimate < ref_low else ("above" if estimate > ref_high else "within")
    return {
        **row,
        "threshold": entry.threshold,
        "steps_to_threshold": reached,
        "reference": entry.reference,
        "verdict": verdict,
        "note": entry.note,
    }


def summarize(entry: Entry, entry_dir: str, result: sweep.SweepResult, sessions: list[dict]) -> dict:
    """The entry's report row from its sweep's result (final rows), directory (evaluation curves) and
    ``sessions`` (each process that trained it: ``wall_seconds``, ``compile_seconds``; an interrupted entry is
    continued by the next one). A run that diverged has no final value (its last one is from before the
    divergence): it is left out of the IQM and counted in ``diverged``. Wall time is the sessions' sum; env
    steps/s is the budget over their time outside compiling (chunks trained again after an interruption count as
    time, not as steps)."""
    curve = _curve(entry_dir)
    runs = result.runs
    diverged = [r["status"] == "diverged" for r in runs]
    finals = np.array([math.nan if bad else r["eval/episode_return"] for r, bad in zip(runs, diverged)], np.float64)
    finite = finals[np.isfinite(finals)] if finals.size else finals
    estimate, low, high = stats.bootstrap_ci(finite) if finite.size else (math.nan, math.nan, math.nan)
    budget = curve["budget"]  # what each run trains (a diverged one stopped before)
    compile_seconds = [r["compile_seconds"] for r in runs if r.get("compile_seconds") is not None]
    compile_s = float(max(compile_seconds)) if compile_seconds else math.nan
    training_seconds = sum(max(x["wall_seconds"] - x["compile_seconds"], 0.0) for x in sessions)
    row = {
        "name": entry.name,
        "config": entry.config,
        "env_steps": budget,
        "seeds": len(runs),
        "diverged": int(sum(diverged)),
        "final_iqm": estimate,
        "ci_low": low,
        "ci_high": high,
        "per_seed": [float(x) for x in finals],
        **{f"iqm_at_{f:g}": _at_or_before(curve, f * budget) for f in FRACTIONS},
        "wall_seconds": sum(x["wall_seconds"] for x in sessions),
        "sessions": len(sessions),
        "compile_seconds": compile_s,
        "env_steps_per_second": budget * len(runs) / max(training_seconds, 1e-9) if training_seconds else math.nan,
        "status": result.status,
    }
    return judged(entry, entry_dir, row, curve)


def run_suite(
    suite: Suite,
    out_dir: str,
    *,
    only: tuple[str, ...] = (),
    tiny: bool = False,
    progress: bool = False,
    announce: bool = False,
) -> list[dict]:
    """Runs the suite's entries (those named in ``only``, if given) into ``out_dir/<entry>``, keeping finished
    ones, and writes ``out_dir/report.md`` and ``report.json``. Returns the report rows. ``announce``: name
    ``out_dir`` on stderr once the suite and directory are checked."""
    unknown = [n for n in only if n not in {e.name for e in suite.entries}]
    if unknown:
        raise ConfigError(
            f"--only: no entry {unknown[0]!r} in suite {suite.name}; entries: {[e.name for e in suite.entries]}"
        )
    selected = [e for e in suite.entries if not only or e.name in only]
    specs = {e.name: _entry_spec(e, tiny) for e in selected}
    host.refuse_file(out_dir)  # before any env is made
    host.refuse_run_or_sweep(out_dir, "a bench report")
    host.refuse_inside(out_dir)
    _check_report(out_dir, suite.name)
    checked = {}  # entry -> its groups' experiments, envs made once
    for entry in selected:  # before the first entry trains: finished ones match, the others can train
        entry_dir = os.path.join(out_dir, entry.name)
        if os.path.exists(os.path.join(entry_dir, "sweep.yaml")):  # finished, or stopped part way: the same spec
            recorded, wanted = _recorded_and_wanted(entry_dir, specs[entry.name])
            if recorded != wanted:  # a tiny result would be reported as the full one
                had = f"{recorded.get('config', {}).get('total_env_steps')} env steps x {len(recorded.get('seeds', []))} seeds"
                asked = f"{wanted['config'].get('total_env_steps')} x {len(wanted['seeds'])}"
                raise ConfigError(
                    f"--out {out_dir}: {entry_dir} holds a sweep with other settings than entry {entry.name} ({had}; "
                    f"this run: {asked}{', --tiny' if tiny else ''}); choose another --out, or remove {entry_dir}"
                )
            if os.path.exists(os.path.join(entry_dir, "entry.json")):
                continue
        try:
            checked[entry.name] = sweep.checked_experiments(
                sweep.expand(specs[entry.name]), population=specs[entry.name].pbt
            )
        except ConfigError as e:
            raise ConfigError(f"suite {suite.name}, entry {entry.name}: {e}") from None
    host.make_dir(out_dir)
    if announce:
        print(f"rlx: bench directory {out_dir}", file=sys.stderr)
    rows = []
    for entry in selected:
        entry_dir = os.path.join(out_dir, entry.name)
        record = os.path.join(entry_dir, "entry.json")
        if os.path.exists(record):
            with open(record) as f:
                rows.append(judged(entry, entry_dir, json.load(f)))
            if not all(os.path.exists(os.path.join(entry_dir, png)) for png in ("curves.png", "final.png")):
                plot.plot_sweep(entry_dir)  # an interrupt while they were drawn (before 2026-12-05: after entry.json)
            continue
        stopped = os.path.exists(os.path.join(entry_dir, "sweep.yaml"))  # its spec matched: continue it
        experiments = checked[entry.name]
        sessions = _sessions(entry_dir) if stopped else []
        tic = time.perf_counter()
        try:
            result = sweep.run(specs[entry.name], entry_dir, progress=progress, resume=stopped, experiments=experiments)
        finally:  # an interrupted session's time is counted when the entry is continued
            wall = time.perf_counter() - tic
            compiling = sum(e.compile_seconds for e in experiments.values())
            sessions.append({"wall_seconds": wall, "compile_seconds": compiling})
            if os.path.isdir(entry_dir):
                host.write_json(os.path.join(entry_dir, SESSIONS), sessions)
        row = summarize(entry, entry_dir, result, sessions)
        plot.plot_sweep(entry_dir)  # before entry.json, which marks the entry finished
        if result.status == "completed":
            host.write_json(record, row)
        rows.append(row)
        # the baseline comparisons re-read every compared entry's runs: once, in the suite's last report
        write_report(suite, out_dir, _with_earlier_entries(suite, out_dir, rows, tiny), tiny, comparisons=False)
    write_report(suite, out_dir, _with_earlier_entries(suite, out_dir, rows, tiny), tiny)
    return rows


SESSIONS = "bench_sessions.json"  # per process that trained an entry: wall and compile seconds


def _sessions(entry_dir: str) -> list[dict]:
    """The sessions recorded for a stopped entry (none for one stopped before this file existed)."""
    path = os.path.join(entry_dir, SESSIONS)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _entry_spec(entry: Entry, tiny: bool) -> sweep.SweepSpec:
    """The sweep an entry runs: its run config over its seeds (``tiny``: shrunk, two seeds)."""
    return sweep.spec_from_dict({"config": run_data(entry, tiny), "seeds": 2 if tiny else entry.seeds})


def _recorded_and_wanted(entry_dir: str, spec: sweep.SweepSpec) -> tuple[Any, dict]:
    """The sweep spec ``entry_dir/sweep.yaml`` holds and ``spec`` as it would be written there."""
    return load_yaml(os.path.join(entry_dir, "sweep.yaml"), "bench"), json.loads(json.dumps(sweep.spec_to_dict(spec)))


def _with_earlier_entries(suite: Suite, out_dir: str, rows: list[dict], tiny: bool) -> list[dict]:
    """``rows`` with the rows of the suite's other entries that finished in ``out_dir`` with the same settings
    (an earlier ``--only``), in the suite's order: a later ``--only B`` kept A on disk but dropped it from the report."""
    by_name = {r["name"]: r for r in rows}
    for entry in suite.entries:
        entry_dir = os.path.join(out_dir, entry.name)
        record = os.path.join(entry_dir, "entry.json")
        if (
            entry.name in by_name
            or not os.path.exists(record)
            or not os.path.exists(os.path.join(entry_dir, "sweep.yaml"))
        ):
            continue
        recorded, wanted = _recorded_and_wanted(entry_dir, _entry_spec(entry, tiny))
        if recorded == wanted:  # another --tiny setting's result is not this report's
            with open(record) as f:
                by_name[entry.name] = judged(entry, entry_dir, json.load(f))
    return [by_name[e.name] for e in suite.entries if e.name in by_name]


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def _check_report(out_dir: str, suite_name: str) -> None:
    """Refuses an ``--out`` whose ``report.md`` / ``report.json`` are not this suite's bench report (a run writes
    over them)."""
    paths = {name: os.path.join(out_dir, name) for name in ("report.md", "report.json")}
    if not any(os.path.exists(p) for p in paths.values()):
        return
    try:
        with open(paths["report.json"]) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        recorded = None
    if not (isinstance(recorded, dict) and {"suite", "rows"} <= set(recorded)):
        raise ConfigError(
            f"--out {out_dir}: has a report.md or report.json that rlx bench did not write; choose another --out"
        )
    if recorded["suite"] != suite_name:
        raise ConfigError(
            f"--out {out_dir}: holds the report of suite {recorded['suite']!r}, not {suite_name!r}; choose another --out"
        )


def _seeds_note(row: dict) -> str:
    return f" ({row['diverged']} diverged)" if row.get("diverged") else ""


def _sessions_note(row: dict) -> str:
    return f" ({row['sessions']} sessions)" if row.get("sessions", 1) > 1 else ""


def _rate(row: dict) -> str:
    rate = row["env_steps_per_second"]
    return f"{rate:,.0f}" if math.isfinite(rate) else "-"


def write_report(suite: Suite, out_dir: str, rows: list[dict], tiny: bool, comparisons: bool = True) -> str:
    """``report.md`` (a table, the comparisons with baselines unless ``comparisons`` is false, then each reference's
    source) and ``report.json``; returns the Markdown."""
    import jax

    device = jax.devices()[0]
    header = [
        f"# rlx bench {suite.name}{' (tiny: one iteration, or until each env holds an n-step run; two seeds)' if tiny else ''}",
        "",
        suite.description,
        "",
        f"{datetime.date.today().isoformat()}, {device.platform} ({device.device_kind}), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}",
        "",
        "| entry | env steps | seeds | final IQM [95% CI] | IQM at 1/4, 1/2, 3/4 | steps to threshold | reference | "
        "verdict | wall s | compile s | env steps/s |",
        "|---|---:|---:|---|---|---|---|---|---:|---:|---:|",
    ]
    lines = []
    for r in rows:
        ref = r["reference"]
        band = f"[{_cell(float(ref['low']))}, {_cell(float(ref['high']))}]" if ref else "-"
        fractions = " / ".join(_cell(r[f"iqm_at_{f:g}"]) for f in FRACTIONS)
        reached = "-" if r["steps_to_threshold"] is None else f"{r['steps_to_threshold']:,}"
        threshold = "-" if r["threshold"] is None else f"{reached} (≥ {_cell(r['threshold'])})"
        lines.append(
            f"| {r['name']} | {r['env_steps']:,} | {r['seeds']}{_seeds_note(r)} | {_cell(r['final_iqm'])} [{_cell(r['ci_low'])}, "
            f"{_cell(r['ci_high'])}] | {fractions} | {threshold} | {band} | {r['verdict'] or '-'} | "
            f"{r['wall_seconds']:.0f}{_sessions_note(r)} | {_cell(r['compile_seconds'], 3)} | {_rate(r)} |"
        )
    sources = [f"- {r['name']}: {r['reference']['source']}" for r in rows if r["reference"]]
    sources += [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
    legend = [
        "",
        "IQM at 1/4, 1/2, 3/4: the seeds' IQM at the last evaluation at or before that fraction of the budget (`-`: "
        "none yet). Steps to threshold: the first evaluation whose IQM reaches it. Env steps/s: every seed's steps "
        "over the time outside compiling.",
    ]
    against = against_baselines(suite, out_dir, rows) if comparisons else []
    text = "\n".join(
        header + lines + legend + _comparison_lines(against) + (["", "References:", *sources] if sources else [])
    )
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"suite": suite.name, "tiny": tiny, "rows": rows, "comparisons": against}, f, indent=2)
    return text + "\n"


def against_baselines(suite: Suite, out_dir: str, rows: list[dict]) -> list[dict]:
    """For each reported entry with a ``baseline`` that is reported too: :func:`rlx.compare.compare` of the
    baseline's and the entry's sweeps (``difference``, ``p_improvement``, ``verdict``), or ``error`` saying why
    they cannot be compared (every run of one diverged, say)."""
    reported = {r["name"] for r in rows}
    read: dict[str, compare.Entry] = {}  # each entry's runs read once, however many entries name it as baseline
    found = []
    for entry in suite.entries:
        if entry.name not in reported or entry.baseline not in reported:
            continue
        result = {"name": entry.name, "baseline": entry.baseline}
        try:
            for name in (entry.baseline, entry.name):
                if name not in read:
                    [read[name]] = compare.read_entries([os.path.join(out_dir, name)])
            _, row = compare.compare_entries(
                [read[entry.baseline], read[entry.name]], "eval/episode_return", None, None
            )
            result.update({k: row[k] for k in ("env_steps", "difference", "p_improvement", "verdict")})
        except ConfigError as e:
            result["error"] = str(e)
        found.append(result)
    return found


def _comparison_lines(comparisons: list[dict]) -> list[str]:
    if not comparisons:
        return []
    lines = [
        "",
        "| entry | baseline | final IQM − baseline's [95% CI] | P(entry > baseline) [95% CI] | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in comparisons:
        if "error" in c:
            lines.append(f"| {c['name']} | {c['baseline']} | - | - | not compared: {c['error']} |")
            continue
        (d, d_low, d_high), (p, p_low, p_high) = c["difference"], c["p_improvement"]
        lines.append(
            f"| {c['name']} | {c['baseline']} | {_cell(d)} [{_cell(d_low)}, {_cell(d_high)}] | {p:.2f} [{p_low:.2f}, "
            f"{p_high:.2f}] | {c['verdict']} |"
        )
    lines += [
        "",
        "Against a baseline (`rlx compare BASELINE ENTRY` on the two entries' folders): the final evaluations' IQM "
        "difference and the probability that a run of the entry scores higher than a run of the baseline, each with "
        "a 95% interval from resampling both entries' seeds; verdict: the difference's interval above or below 0.",
    ]
    return lines
