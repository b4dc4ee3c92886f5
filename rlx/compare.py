"""``rlx compare``: settings of one or more sweeps side by side, with seeds as the samples.

Each entry is a sweep's setting (``SWEEP_DIR`` for each of its settings, ``SWEEP_DIR:N`` for setting N of
``settings.csv``; an ``rlx bench`` directory for each of its entries). The first entry is the baseline. For each
entry: the IQM of its seeds' scores with a 95% bootstrap interval; against the baseline, the difference of IQMs and
the probability of improvement (a run of the entry scores higher than a run of the baseline; Agarwal et al. 2021),
each with a 95% interval from resampling both entries' seeds independently; a verdict from the difference's interval; and the env steps at which the IQM curve first reaches a
threshold. Scores are taken at the last evaluation every seed logged, or at the last one at or before ``at``: env
steps (an int), or a share of each entry's budget (``"50%"``: half the env steps its runs train, so that entries
and tasks with different budgets are scored at the same point of theirs). Across tasks (:func:`compare_methods`,
``--method``), each method's settings are its tasks (their envs): the table gives each task's IQMs and, per method,
the probability of improvement over the first averaged over tasks, and with a score range per task (``normalize``)
the IQM of normalized scores over all runs and tasks pooled."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from rlx import host, plot, stats
from rlx.config import ConfigError, whole_number

FEW_SEEDS = 5  # below this the table says its intervals are not to be trusted (the guide's minimum for a claim)
PROFILE_POINTS = 101  # normalized scores at which the performance profile is drawn


@dataclass(frozen=True)
class Entry:
    """One compared setting: ``curve`` is :func:`rlx.plot.curves`' entry for it."""

    label: str
    sweep_dir: str
    setting: int
    curve: dict


def _split(target: str) -> tuple[str, int | None]:
    """``DIR`` or ``DIR:N`` (a directory named with a colon is taken whole when it exists)."""
    if os.path.isdir(target) or ":" not in target:
        return target, None
    sweep_dir, _, number = target.rpartition(":")
    if not number.isdigit():
        raise ConfigError(f"compare {target}: no such directory, and {number!r} after ':' is not a setting number")
    return sweep_dir, int(number)


def entries(targets: list[str], metric: str = "eval/episode_return") -> list[Entry]:
    """The entries ``targets`` name, in order (a sweep directory alone gives each of its settings); at least two."""
    found = read_entries(targets, metric)
    if len(found) < 2:
        raise ConfigError(
            f"compare: {len(found)} setting given ({', '.join(targets)}); name two sweeps, or a sweep of several settings"
        )
    return found


def _bench_entries(out_dir: str) -> list[str] | None:
    """The entry folders of an ``rlx bench`` directory, in its report's order (None when it is not one)."""
    report = os.path.join(out_dir, "report.json")
    if os.path.exists(os.path.join(out_dir, "sweep.yaml")) or not os.path.exists(report):
        return None
    try:
        with open(report) as f:
            rows = json.load(f)["rows"]
        names = [row["name"] for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [os.path.join(out_dir, name) for name in names if os.path.exists(os.path.join(out_dir, name, "sweep.yaml"))]


def read_entries(targets: list[str], metric: str = "eval/episode_return") -> list[Entry]:
    """The entries ``targets`` name, in order (any number; :func:`entries` wants two)."""
    found: list[Entry] = []
    expanded = []
    for target in targets:  # an rlx bench directory stands for its entries
        entries_of_bench = _bench_entries(target) if os.path.isdir(target) else None
        expanded += entries_of_bench if entries_of_bench is not None else [target]
    for target in expanded:
        sweep_dir, number = _split(target)
        if not os.path.isdir(sweep_dir):
            raise ConfigError(f"compare {sweep_dir}: no such directory")
        curves = plot.curves(sweep_dir, metric, what="compare")
        settings = sorted(curves.items(), key=lambda item: item[1]["setting"])
        if number is not None:
            settings = [(label, d) for label, d in settings if d["setting"] == number]
            if not settings:
                known = ", ".join(str(d["setting"]) for d in curves.values())
                raise ConfigError(f"compare {target}: the sweep has no setting {number}; its settings are {known}")
        name = os.path.normpath(sweep_dir)
        for label, d in settings:
            entry = Entry(name if len(curves) == 1 else f"{name}: {label}", sweep_dir, d["setting"], d)
            if any(e.label == entry.label for e in found):
                raise ConfigError(f"compare: {entry.label} is listed twice")
            found.append(entry)
    return found


Where = int | str | None  # ``at``: None (the last evaluation), env steps, or a share of the budget ("50%")


def parse_at(text: str) -> int | str:
    """``--at``: env steps (``100000``, ``1e5``) or a share of each entry's budget (``50%``)."""
    text = text.strip()
    if text.endswith("%"):
        _share(text)
        return text
    number = whole_number(text)
    if number is None:
        raise ConfigError(f"--at {text}: expected env steps (100000, 1e5) or a share of each entry's budget (50%)")
    return number


def _share(at: str) -> float:
    """``"50%"`` -> 0.5; anything but a percentage in (0, 100] fails with one line."""
    try:
        percent = float(at[:-1]) if at.endswith("%") else math.nan
    except ValueError:
        percent = math.nan
    if not 0 < percent <= 100:
        raise ConfigError(f"--at {at}: a share of the budget is a percentage in (0, 100], e.g. 50%")
    return percent / 100


def at_steps(entry: Entry, at: Where) -> float | None:
    """The env steps ``at`` stands for in ``entry`` (None: its last evaluation)."""
    if isinstance(at, str):
        return _share(at) * entry.curve["budget"]
    return None if at is None else float(at)


def scores(entry: Entry, metric: str, at: Where) -> tuple[int, np.ndarray]:
    """``(env_steps, [seeds] scores)``: the last evaluation every seed logged, or the last at or before ``at``."""
    steps = entry.curve["env_steps"]
    if not len(steps):
        missing, runs = entry.curve["missing"], entry.curve.get("seeds", entry.curve.get("runs"))
        if runs == 0:
            why = " (every run diverged)"
        elif missing == runs:
            why = " (is it a metrics.jsonl column?)"
        else:
            why = (
                f" ({missing} of its runs have logged none yet)" if missing else " (its runs logged at different steps)"
            )
        raise ConfigError(f"compare {entry.label}: no evaluation of {metric!r} that all its runs logged{why}")
    limit = at_steps(entry, at)
    index = len(steps) - 1 if limit is None else int(np.searchsorted(steps, limit, side="right")) - 1
    if index < 0:
        share = f" ({at} of its budget is {limit:,.0f})" if isinstance(at, str) else ""
        raise ConfigError(f"--at {at}: {entry.label}'s first evaluation is at {int(steps[0]):,} env steps{share}")
    return int(steps[index]), np.asarray(entry.curve["per_seed"][index], np.float64)


def _verdict(low: float, high: float, neither: float = 0.0) -> str:
    """``higher`` / ``lower`` when the interval ``[low, high]`` lies above / below ``neither``."""
    return "higher" if low > neither else ("lower" if high < neither else "not separated")


def compare(
    targets: list[str],
    metric: str = "eval/episode_return",
    at: Where = None,
    threshold: float | None = None,
    num_resamples: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """One row per entry (see the module docstring): ``label``, ``sweep_dir``, ``setting``, ``seeds``,
    ``env_steps``, ``iqm``, ``ci_low``, ``ci_high``; ``difference`` and ``p_improvement`` (each ``(estimate, low,
    high)`` against the first entry; ``None`` on the first), ``verdict`` and ``steps_to_threshold`` (``None`` when
    the IQM curve never reaches ``threshold``, or no threshold)."""
    return compare_entries(entries(targets, metric), metric, at, threshold, num_resamples, seed)


def compare_entries(
    found: list[Entry], metric: str, at: Where, threshold: float | None, num_resamples: int = 2000, seed: int = 0
) -> list[dict]:
    """:func:`compare` of entries already read."""
    taken = [scores(entry, metric, at) for entry in found]
    base = taken[0][1]
    rows = []
    for entry, (env_steps, x) in zip(found, taken, strict=True):
        estimate, low, high = stats.bootstrap_ci(x, num_resamples=num_resamples, seed=seed)
        first = entry is found[0]
        difference = None if first else stats.bootstrap_ci_between(x, base, num_resamples=num_resamples, seed=seed)
        improvement = (
            None
            if first
            else stats.bootstrap_ci_between(x, base, stats.probability_of_improvement, num_resamples, seed=seed)
        )
        reached = None
        if threshold is not None:
            hits = np.nonzero(entry.curve["iqm"] >= threshold)[0]
            reached = int(entry.curve["env_steps"][hits[0]]) if hits.size else None
        rows.append(
            {
                "label": entry.label,
                "sweep_dir": entry.sweep_dir,
                "setting": entry.setting,
                "env": entry.curve["env"],
                "seeds": int(x.size),
                "env_steps": env_steps,
                "iqm": estimate,
                "ci_low": low,
                "ci_high": high,
                "difference": difference,
                "p_improvement": improvement,
                "verdict": None if first else _verdict(difference[1], difference[2]),
                "steps_to_threshold": reached,
            }
        )
    return rows


def _interval(values: tuple[float, float, float], digits: int) -> str:
    estimate, low, high = values
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _where(at: Where) -> str:
    if isinstance(at, str):
        return f"at or before {at} of each entry's budget (the env steps its runs train)"
    return "all of an entry's seeds logged" if at is None else f"at or before {at:,} env steps"


def _few_seeds(names: list[str], total: int) -> list[str]:
    """The table's line about entries with too few seeds for their intervals, if any."""
    if not names:
        return []
    which = "every entry" if len(names) == total else ", ".join(names)
    return [f"Fewer than {FEW_SEEDS} seeds ({which}): these intervals cannot be trusted."]


def _draw(ax, curve: dict, label: str, colour) -> None:
    """An IQM curve with its 95% band."""
    ax.plot(curve["env_steps"], curve["iqm"], color=colour, label=label, marker="o", ms=2)
    ax.fill_between(curve["env_steps"], curve["low"], curve["high"], color=colour, alpha=0.2, linewidth=0)


def table(
    rows: list[dict], metric: str = "eval/episode_return", at: Where = None, threshold: float | None = None
) -> str:
    """The rows as a Markdown table with what its columns mean below it."""
    digits = 3 if max(abs(r["iqm"]) for r in rows) < 10 else 1
    reach = f" | steps to IQM ≥ {threshold:g}" if threshold is not None else ""
    lines = [
        f"| entry | seeds | env steps | {metric} IQM [95% CI] | IQM − first [95% CI] | P(> first) [95% CI] | "
        f"verdict{reach} |",
        "|---|---:|---:|---|---|---|---" + ("|---:" if threshold is not None else "") + "|",
    ]
    for r in rows:
        first = r["difference"] is None
        cells = [
            r["label"],
            str(r["seeds"]),
            f"{r['env_steps']:,}",
            _interval((r["iqm"], r["ci_low"], r["ci_high"]), digits),
            "(first)" if first else _interval(r["difference"], digits),
            "(first)" if first else _interval(r["p_improvement"], 2),
            "" if first else r["verdict"],
        ]
        if threshold is not None:
            cells.append("never" if r["steps_to_threshold"] is None else f"{r['steps_to_threshold']:,}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Scores: {metric} at the last evaluation {_where(at)}. Intervals: 95% percentile bootstrap over seeds; against the first "
        "entry, both entries' seeds resampled independently. P(> first): the probability that a run of the entry "
        "scores higher than a run of the first (ties count half; 0.5: neither tends higher). Verdict: whether the "
        "interval of the IQM difference lies above or below 0.",
    ]
    lines += _few_seeds([r["label"] for r in rows if r["seeds"] < FEW_SEEDS], len(rows))
    if len({r["env_steps"] for r in rows}) > 1:
        lines.append("The entries' scores are from different env steps (see the column).")
    envs = list(dict.fromkeys(r["env"] for r in rows))
    if len(envs) > 1:
        lines.append(
            f"The entries train on different envs ({', '.join(envs)}): their returns are on different scales; "
            "--method compares methods across tasks."
        )
    return "\n".join(lines)


def plot_curves(found: list[Entry], rows: list[dict], metric: str, path: str) -> str:
    """``path`` (a PNG): each entry's IQM curve with its 95% band, the entries named as in the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, r in enumerate(rows):  # rows are in the entries' order
        _draw(ax, found[i].curve, f"{r['label']} ({r['seeds']} seeds)", plt.get_cmap("tab10")(i % 10))
    ax.set(xlabel="env steps", ylabel=f"{metric} (IQM, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write(found: list[Entry], rows: list[dict], metric: str, at: Where, threshold, out_dir: str) -> list[str]:
    """``compare.md`` (the table), ``compare.json`` (the rows) and ``compare.png`` (the curves) in ``out_dir``."""
    host.make_dir(out_dir)
    paths = [os.path.join(out_dir, name) for name in ("compare.md", "compare.json", "compare.png")]
    with open(paths[0], "w") as f:
        f.write(table(rows, metric, at, threshold) + "\n")
    with open(paths[1], "w") as f:
        json.dump({"metric": metric, "at": at, "threshold": threshold, "rows": rows}, f, indent=1)
    plot_curves(found, rows, metric, paths[2])
    return paths


def _method_entries(methods: dict[str, list[str]], metric: str) -> dict[str, dict[str, Entry]]:
    """Per method, its entries by task (the entry's env)."""
    if len(methods) < 2:
        raise ConfigError(f"compare: {len(methods)} method given; --method NAME=DIR[,DIR...] at least twice")
    found: dict[str, dict[str, Entry]] = {}
    for name, targets in methods.items():
        by_task: dict[str, Entry] = {}
        for entry in read_entries(targets, metric):
            env = entry.curve["env"]
            if env in by_task:
                raise ConfigError(
                    f"compare --method {name}: two settings on {env} ({by_task[env].label}; {entry.label}): a task "
                    "takes one setting, pick it with DIR:N"
                )
            by_task[env] = entry
        found[name] = by_task
    first, *others = found
    for name in others:
        missing, extra = set(found[first]) - set(found[name]), set(found[name]) - set(found[first])
        if missing or extra:
            said = "; ".join(
                f"{what} {', '.join(sorted(envs))}" for what, envs in (("lacks", missing), ("adds", extra)) if envs
            )
            raise ConfigError(f"compare --method {name}: not the tasks of {first}: it {said}")
    return found


def compare_methods(
    methods: dict[str, list[str]],
    metric: str = "eval/episode_return",
    at: Where = None,
    num_resamples: int = 2000,
    seed: int = 0,
    normalize: dict[str, tuple[float, float]] | None = None,
) -> dict:
    """Methods across tasks (Agarwal et al. 2021's aggregate): ``methods`` maps a name to its targets (``DIR`` or
    ``DIR:N``), one setting per task, the task being the setting's env. Returns ``tasks`` (the first method's
    order) and ``methods``: per method ``name``, ``per_task`` (per task ``seeds``, ``env_steps``, ``iqm``, ``ci_low``,
    ``ci_high``), ``p_improvement`` (``(estimate, low, high)``: averaged over tasks, against the first method, seeds
    resampled within each task; ``None`` on the first) and ``verdict`` (whether its interval lies above or below
    0.5). Raw returns are not pooled across tasks: their scales differ. With ``normalize`` (per task ``(low,
    high)``, ``"*"`` for every task not named) each score becomes ``(score - low) / (high - low)`` and each method
    also gets ``normalized_iqm`` (the IQM over all its runs and tasks pooled, rliable's aggregate IQM) and, against
    the first, ``normalized_difference`` and ``normalized_verdict``, intervals again resampling seeds within each
    task, and ``profile`` (``[fraction, low, high]``: the performance profile at each of the result's ``taus``, the
    fraction of runs above each normalized score, averaged over tasks, with its 95% band)."""
    found = _method_entries(methods, metric)
    tasks = list(next(iter(found.values())))
    ranges = None if normalize is None else _ranges(normalize, tasks)
    matrices, rows = {}, []
    for name, by_task in found.items():
        taken = [scores(by_task[task], metric, at) for task in tasks]
        counts = {task: x.size for task, (_, x) in zip(tasks, taken, strict=True)}
        if len(set(counts.values())) > 1:
            said = ", ".join(f"{task} {n}" for task, n in counts.items())
            raise ConfigError(
                f"compare --method {name}: its tasks have different numbers of seeds ({said}); resampling within each "
                "task needs the same number"
            )
        matrices[name] = np.stack([x for _, x in taken], axis=1)
        per_task = []
        for env_steps, x in taken:
            estimate, low, high = stats.bootstrap_ci(x, num_resamples=num_resamples, seed=seed)
            per_task.append(
                {"seeds": int(x.size), "env_steps": env_steps, "iqm": estimate, "ci_low": low, "ci_high": high}
            )
        rows.append({"name": name, "per_task": per_task, "p_improvement": None, "verdict": None})
    base = matrices[rows[0]["name"]]
    for row in rows[1:]:
        improvement = stats.bootstrap_ci_between(
            matrices[row["name"]], base, stats.probability_of_improvement, num_resamples, seed=seed
        )
        row.update(p_improvement=improvement, verdict=_verdict(improvement[1], improvement[2], neither=0.5))
    profile_taus = None
    if ranges is not None:
        low, high = ranges
        normalized = {name: (matrix - low) / (high - low) for name, matrix in matrices.items()}
        pooled = np.concatenate([m.ravel() for m in normalized.values()])
        taus = np.linspace(min(0.0, pooled.min()), max(1.0, pooled.max()), PROFILE_POINTS)
        for row in rows:
            mine = normalized[row["name"]]
            profile = stats.bootstrap_ci(mine, lambda x: stats.performance_profile(x, taus), num_resamples, seed=seed)
            row["profile"] = [values.tolist() for values in profile]
            row["normalized_iqm"] = stats.bootstrap_ci(mine, num_resamples=num_resamples, seed=seed)
            first = row is rows[0]
            difference = (
                None
                if first
                else stats.bootstrap_ci_between(
                    mine, normalized[rows[0]["name"]], num_resamples=num_resamples, seed=seed
                )
            )
            row.update(
                normalized_difference=difference,
                normalized_verdict=None if first else _verdict(difference[1], difference[2]),
            )
        profile_taus = taus.tolist()
    return {"tasks": tasks, "methods": rows, "entries": found, "normalize": normalize, "taus": profile_taus}


def _check_range(named: str, low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"--normalize {named}: LOW and HIGH must be finite with LOW < HIGH")


def _ranges(normalize: dict[str, tuple[float, float]], tasks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``([tasks] lows, [tasks] highs)`` from ``normalize`` (``"*"``: every task it does not name)."""
    for task, (low, high) in normalize.items():
        _check_range(f"{task}={low:g}:{high:g}", low, high)
    unknown = [task for task in normalize if task != "*" and task not in tasks]
    if unknown:
        raise ConfigError(f"--normalize {unknown[0]}: not one of the tasks ({', '.join(tasks)})")
    missing = [task for task in tasks if task not in normalize and "*" not in normalize]
    if missing:
        raise ConfigError(
            f"--normalize: no range for {', '.join(missing)}; give TASK=LOW:HIGH for each task (or *=LOW:HIGH for all)"
        )
    chosen = [normalize.get(task, normalize.get("*")) for task in tasks]
    return np.array([c[0] for c in chosen], np.float64), np.array([c[1] for c in chosen], np.float64)


def methods_table(result: dict, metric: str = "eval/episode_return", at: Where = None) -> str:
    """:func:`compare_methods`' result as two Markdown tables (per task; over tasks) with what they mean."""
    rows, first = result["methods"], result["methods"][0]["name"]
    digits = 3 if max(abs(t["iqm"]) for r in rows for t in r["per_task"]) < 10 else 1
    lines = [
        "| task | " + " | ".join(f"{r['name']} IQM [95% CI]" for r in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for i, task in enumerate(result["tasks"]):
        cells = [
            f"{_interval((t['iqm'], t['ci_low'], t['ci_high']), digits)} ({t['seeds']})"
            for t in (r["per_task"][i] for r in rows)
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    normalized = result.get("normalize") is not None
    head = f"| method | tasks | P(> {first}) over tasks [95% CI] | verdict |"
    if normalized:
        head += f" normalized IQM [95% CI] | normalized IQM − {first} [95% CI] | verdict (normalized IQM) |"
    lines += ["", head, "|---|---:|---|---|" + "---|---|---|" * normalized]
    for r in rows:
        shown = ["(first)", ""] if r["p_improvement"] is None else [_interval(r["p_improvement"], 2), r["verdict"]]
        if normalized:
            shown.append(_interval(r["normalized_iqm"], 3))
            against = r["normalized_difference"]
            shown += ["(first)", ""] if against is None else [_interval(against, 3), r["normalized_verdict"]]
        lines.append(f"| {r['name']} | {len(result['tasks'])} | " + " | ".join(shown) + " |")
    pooled = (
        "Normalized: each task's scores mapped to (score − low) / (high − low) with --normalize's ranges ("
        + ", ".join(f"{task} {low:g}:{high:g}" for task, (low, high) in result["normalize"].items())
        + "), then the IQM over all of a method's runs and tasks pooled (rliable's aggregate IQM), its interval and "
        "the difference's from resampling seeds within each task; verdict: whether the difference's interval lies "
        "above or below 0."
        if normalized
        else "Returns are not pooled across tasks: their scales differ (--normalize TASK=LOW:HIGH pools normalized "
        "scores)."
    )
    lines += [
        "",
        f"Scores: {metric} at the last evaluation {_where(at)}; per task, the IQM over seeds (their number in brackets) "
        f"with a 95% bootstrap interval. P(> {first}): the probability that a run of the method scores higher than "
        f"a run of {first} on the same task, averaged over tasks, with a 95% interval from resampling each method's "
        f"seeds within each task. Verdict: whether that interval lies above or below 0.5. {pooled}",
    ]
    few = [r["name"] for r in rows if any(t["seeds"] < FEW_SEEDS for t in r["per_task"])]
    lines += _few_seeds(few, len(rows))
    if any(len({r["per_task"][i]["env_steps"] for r in rows}) > 1 for i in range(len(result["tasks"]))):
        lines.append("On some task the methods' scores are from different env steps (compare.json has them).")
    return "\n".join(lines)


def write_methods(result: dict, metric: str, at: Where, out_dir: str) -> list[str]:
    """:func:`compare_methods`' ``compare.md``, ``compare.json`` and ``compare.png`` (a panel per task; with
    ``normalize``, one more: the performance profile over all tasks) in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    host.make_dir(out_dir)
    paths = [os.path.join(out_dir, name) for name in ("compare.md", "compare.json", "compare.png")]
    with open(paths[0], "w") as f:
        f.write(methods_table(result, metric, at) + "\n")
    with open(paths[1], "w") as f:
        saved = {"metric": metric, "at": at, "normalize": result.get("normalize"), "tasks": result["tasks"]}
        saved.update(methods=result["methods"], taus=result.get("taus"))
        json.dump(saved, f, indent=1)
    tasks = result["tasks"]
    profiled = result.get("taus") is not None
    columns = min(3, len(tasks) + profiled)
    rows_of_panels = -(-(len(tasks) + profiled) // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(4.5 * columns, 3.5 * rows_of_panels), dpi=120)
    axes = np.atleast_1d(axes).ravel()
    for ax, task in zip(axes, tasks, strict=False):
        for i, (name, by_task) in enumerate(result["entries"].items()):
            _draw(ax, by_task[task].curve, name, plt.get_cmap("tab10")(i % 10))
        ax.set(title=task, xlabel="env steps", ylabel=f"{metric} (IQM, 95% CI)")
        ax.grid(alpha=0.3)
    if profiled:  # Agarwal et al. 2021's score distribution: the fraction of runs above each normalized score
        ax = axes[len(tasks)]
        for i, r in enumerate(result["methods"]):
            fraction, low, high = r["profile"]
            colour = plt.get_cmap("tab10")(i % 10)
            ax.plot(result["taus"], fraction, color=colour, label=r["name"])
            ax.fill_between(result["taus"], low, high, color=colour, alpha=0.2, linewidth=0)
        ax.set(title="all tasks", xlabel="normalized score τ", ylabel="fraction of runs > τ (95% CI)")
        ax.grid(alpha=0.3)
    for ax in axes[len(tasks) + profiled :]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(paths[2])
    plt.close(fig)
    return paths


def parse_normalize(options: list[str]) -> dict[str, tuple[float, float]]:
    """``["gymnax/CartPole-v1=0:500", "*=0:1000"]`` (the ``--normalize`` options) -> ``{task: (low, high)}``."""
    ranges: dict[str, tuple[float, float]] = {}
    for option in options:
        for part in (p for p in option.split(",") if p):
            task, sep, bounds = part.partition("=")
            low, _, high = bounds.partition(":")
            try:
                low_high = (float(low), float(high))  # no ':' leaves high empty: not a number
            except ValueError:
                low_high = None
            if not sep or low_high is None or not task.strip():
                raise ConfigError(
                    f"--normalize {part}: expected TASK=LOW:HIGH, e.g. gymnax/CartPole-v1=0:500 or *=0:1000"
                )
            _check_range(part, *low_high)
            if task in ranges:
                raise ConfigError(f"--normalize {task}: given twice")
            ranges[task] = low_high
    return ranges


def parse_methods(options: list[str]) -> dict[str, list[str]]:
    """``["sac=A,B", "simbav2=C,D"]`` (the ``--method`` options) -> ``{"sac": ["A", "B"], ...}``."""
    methods: dict[str, list[str]] = {}
    for option in options:
        name, sep, targets = option.partition("=")
        if not sep or not name.strip() or not targets.strip():
            raise ConfigError(f"--method {option}: expected NAME=SWEEP_DIR[:SETTING][,...], e.g. sac=runs/sac_hopper")
        if name in methods:
            raise ConfigError(f"--method {name}: given twice")
        methods[name] = [t for t in targets.split(",") if t]
    return methods


def check_arguments(metric: str, at: Where, threshold: float | None, out_dir: str | None) -> None:
    """The command's options, before any sweep is read."""
    if not metric.strip():
        raise ConfigError("--metric: empty; name a metrics.jsonl column, e.g. eval/episode_return")
    if isinstance(at, str):
        _share(at)
    elif at is not None and at <= 0:
        raise ConfigError(f"--at: env steps must be positive; got {at}")
    if threshold is not None and not math.isfinite(threshold):
        raise ConfigError(f"--threshold: must be a finite number; got {threshold}")
    if out_dir and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"--out {out_dir}: is a file; compare writes compare.md, .json and .png into a directory")
