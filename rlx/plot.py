"""PNG figures of a sweep: learning curves (IQM over seeds with a 95% bootstrap band) and final scores
(IQM with 95% bootstrap interval) for every setting. ``rlx plot SWEEP_DIR`` writes
``curves.png`` and ``final.png``."""

from __future__ import annotations

import math
import os

import numpy as np

from rlx import driver, host, stats, sweep
from rlx.config import ConfigError
from rlx.metrics_log import read_metrics

MAX_COLOURED = 10  # settings drawn in colour and named in curves.png's legend; the others are grey
MAX_BARS = 20  # settings in final.png (the best by final IQM when there are more)


def _count(size: int, unit: str) -> str:
    return f"{size} {unit}" + ("" if size == 1 else "s")


def _marker(d: dict) -> str | None:
    """Points are marked on short curves: a run evaluated once (``num_chunks: 1``) has a curve of one point,
    which a line alone does not draw."""
    return "o" if len(d["env_steps"]) <= 20 else None


def _short(path: str) -> str:
    """A swept field's name in labels: its last part (``learning_rate``), the section's for ``env.name`` (``env``)."""
    parts = path.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def setting_label(values: dict) -> str:
    """``{"agent.learning_rate": 0.001}`` -> ``"learning_rate=0.001"``; ``"base"`` when nothing is swept."""
    parts = [
        f"{_short(path)}={value:.3g}" if isinstance(value, float) else f"{_short(path)}={value}"
        for path, value in values.items()
    ]
    return ", ".join(parts) or "base"


def curves(sweep_dir: str, metric: str = "eval/episode_return", what: str = "plot") -> dict[str, dict]:
    """Per setting label: ``env_steps`` [T], ``iqm``, ``low``, ``high`` [T] over the seeds that logged ``metric``
    at each step (a step is kept only when every seed has a finite value there; in a population, when any run has),
    ``final`` (per-seed last values), ``per_seed`` (at each of ``env_steps``, the seeds' values), ``setting`` (its
    number in ``settings.csv``), ``env`` (its env's name), ``budget`` (the env steps each run trains: whole
    iterations), ``seeds``, ``diverged`` (runs left out: diverged in training, their last values are from before the
    divergence) and ``missing`` (of ``seeds``, those without a value yet: not started). With population-based
    training no run keeps its setting: one curve per group (its population, ``setting`` the group's number), over
    all its runs (``runs`` in place of ``seeds``); ``what`` names the command in errors."""
    spec = sweep.load_spec(sweep_dir, what=what)
    population = spec.pbt is not None
    found: list[tuple[str, int, dict]] = []
    for group in sweep.expand(spec):
        by_setting: dict[int, list] = {}
        for member in group.members:
            by_setting.setdefault(group.index if population else member.setting, []).append(member)
        for members in by_setting.values():
            series, diverged = [], 0
            for member in members:
                run_dir = os.path.join(sweep_dir, "runs", member.name)
                if host.run_status(run_dir) == "diverged":  # its values stop before the divergence: no result
                    diverged += 1
                    continue
                rows = read_metrics(run_dir)
                series.append(
                    {r["env_steps"]: r[metric] for r in rows if r.get(metric) is not None and math.isfinite(r[metric])}
                )
            # a population's run revived after diverging has no values for the chunks it waited: its steps are
            # the population's over the runs that have a value there
            meet = set.union if population else set.intersection
            steps = sorted(meet(*(set(s) for s in series))) if series else []
            columns = [np.array([s[x] for s in series if x in s]) for x in steps]
            bands = [stats.bootstrap_ci(column, num_resamples=1000) for column in columns]
            finals = [s[max(s)] for s in series if s]
            if population:
                label = setting_label({p: v for p, v in members[0].values.items() if p in spec.groups})
                label = "population" + ("" if label == "base" else f" ({label})")
            else:
                label = setting_label(members[0].values)
            found.append(
                (
                    label,
                    group.index if population else members[0].setting,
                    {
                        "env_steps": np.array(steps),
                        "iqm": np.array([b[0] for b in bands]),
                        "low": np.array([b[1] for b in bands]),
                        "high": np.array([b[2] for b in bands]),
                        "final": np.array(finals),
                        "per_seed": columns,
                        "setting": group.index if population else members[0].setting,
                        "env": members[0].config.env.name,
                        "budget": driver.plan_for(members[0].config).total_env_steps,
                        "runs" if population else "seeds": len(members) - diverged,
                        "diverged": diverged,
                        "missing": sum(1 for s in series if not s),
                    },
                )
            )
    # labels round values to 3 digits: settings they would merge (3e-4 and 3.0004e-4) are told apart by number,
    # instead of one silently replacing the other
    labels = [label for label, _, _ in found]
    return {
        (label if labels.count(label) == 1 else f"{label} (setting {setting})"): data for label, setting, data in found
    }


def sweep_title(groups: list[sweep.Group]) -> str:
    """``"ppo on gymnax/CartPole-v1"``: every algorithm and env the groups train (more than three envs counted)."""
    algos, envs = (list(dict.fromkeys(f(g.config) for g in groups)) for f in (lambda c: c.algo, lambda c: c.env.name))
    return f"{', '.join(algos)} on {', '.join(envs) if len(envs) <= 3 else f'{len(envs)} envs'}"


def plot_sweep(sweep_dir: str, out_dir: str | None = None, metric: str = "eval/episode_return") -> list[str]:
    """Writes ``curves.png`` and ``final.png`` for the sweep in ``sweep_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(sweep_dir, metric)
    if not any(len(d["env_steps"]) for d in data.values()):
        hint = "" if metric == "eval/episode_return" else " (is it a metrics.jsonl column?)"
        raise ConfigError(f"{sweep_dir}: no run has logged {metric!r} yet{hint}")
    out_dir = out_dir or sweep_dir
    host.make_dir(out_dir)
    title = sweep_title(sweep.expand(sweep.load_spec(sweep_dir, what="plot")))
    tab10 = plt.get_cmap("tab10")
    palette = [tab10(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + ["black"]  # tab10's grey is the others' colour
    finals = {label: stats.bootstrap_ci(d["final"]) for label, d in data.items() if d["final"].size}
    # beyond ten settings, the ten best by final IQM get colours and the legend (beside the axes), the rest are
    # grey: with one colour per setting the palette repeats and the legend covers the plot
    ranked = sorted(data, key=lambda label: -finals[label][0] if label in finals else math.inf)
    shown = ranked[:MAX_COLOURED] if len(data) > MAX_COLOURED else list(data)

    fig, ax = plt.subplots(figsize=(7 if len(data) <= MAX_COLOURED else 10, 4.5), dpi=120)
    others = [label for label in data if label not in shown]
    for label in others:
        d = data[label]
        ax.plot(d["env_steps"], d["iqm"], color="0.6", linewidth=0.8, alpha=0.6, marker=_marker(d), markersize=2)
    if others:
        ax.plot([], [], color="0.6", label=f"{len(others)} other settings (settings.csv)")
    for i, label in enumerate(shown):
        d, colour = data[label], palette[i % len(palette)]
        left_out = f", {d['diverged']} diverged" if d["diverged"] else ""
        size, unit = (d["seeds"], "seed") if "seeds" in d else (d["runs"], "run")
        counted = f"{size - d['missing']} of {_count(size, unit)}" if d["missing"] else _count(size, unit)
        ax.plot(
            d["env_steps"],
            d["iqm"],
            color=colour,
            label=f"{label} ({counted}{left_out})",
            marker=_marker(d),
            markersize=3,
            zorder=3,
        )
        ax.fill_between(d["env_steps"], d["low"], d["high"], color=colour, alpha=0.2, linewidth=0, zorder=2)
    best = f" (the {len(shown)} best by final IQM in colour)" if others else ""
    ax.set(xlabel="env steps", ylabel=f"{metric} (IQM, 95% CI)", title=title + best)
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize="small")
    fig.tight_layout()
    curves_path = os.path.join(out_dir, "curves.png")
    fig.savefig(curves_path)
    plt.close(fig)

    labels = [label for label in data if label in finals]
    if len(labels) > MAX_BARS:  # the best ones, best first; a figure 1.2 inches per setting is unreadable past this
        labels = [label for label in ranked if label in finals][:MAX_BARS]
    estimates = [finals[label] for label in labels]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 4.5), dpi=120)
    iqms = np.array([e[0] for e in estimates])
    errors = np.array([[e[0] - e[1] for e in estimates], [e[2] - e[0] for e in estimates]])
    bar_colours = [palette[shown.index(label) % len(palette)] if label in shown else "0.6" for label in labels]
    ax.bar(range(len(labels)), iqms, yerr=errors, capsize=4, color=bar_colours)
    ticks = [label + (f" ({data[label]['diverged']} diverged)" if data[label]["diverged"] else "") for label in labels]
    ax.set_xticks(range(len(labels)), ticks, rotation=20, ha="right", fontsize="small")
    subset = f" (the {len(labels)} best of {len(finals)} settings)" if len(labels) < len(finals) else ""
    ax.set(ylabel=f"final {metric} (IQM, 95% CI)", title=title + subset)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    final_path = os.path.join(out_dir, "final.png")
    fig.savefig(final_path)
    plt.close(fig)
    return [curves_path, final_path]


def plot_run(run_dir: str, out_dir: str | None = None) -> list[str]:
    """Writes ``curve.png`` for the single run in ``run_dir``: training and evaluation episode returns
    against env steps (from ``metrics.jsonl``); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import yaml

    rows = read_metrics(run_dir)
    series = {
        name: [(r["env_steps"], r[metric]) for r in rows if r.get(metric) is not None and math.isfinite(r[metric])]
        for name, metric in (("training episodes", "train/episode_return"), ("evaluation", "eval/episode_return"))
    }
    if not any(series.values()):
        raise ConfigError(f"{run_dir}: no episode return logged yet (metrics.jsonl has no finished chunk with one)")
    with open(os.path.join(run_dir, "config.yaml")) as f:
        config = yaml.safe_load(f) or {}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in series.items():
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, marker="o", markersize=3, label=name)
    title = f"{config.get('algo', 'ppo')} on {(config.get('env') or {}).get('name', '')}, seed {config.get('seed', 0)}"
    ax.set(xlabel="env steps", ylabel="episode return", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out_dir = out_dir or run_dir
    host.make_dir(out_dir)
    path = os.path.join(out_dir, "curve.png")
    fig.savefig(path)
    plt.close(fig)
    return [path]
