"""Sweep specs: what to sweep (seeds, vmapped grid/random axes over traced fields, compiled groups over
static ones), their validation, and their expansion into groups of fully validated runs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from typing import Any

import numpy as np
import yaml

from rlx import algos, driver
from rlx.config import ConfigError, merge, parse_assignment, plain_data, to_dict, traced_fields
from rlx.sweep.pbt import PBTSpec, axis_value, pbt_from_dict, pbt_to_dict, priors

FIXED_FIELDS = ("algo", "seed")  # one algorithm per sweep; seeds have their own axis


@dataclasses.dataclass(frozen=True)
class RandomAxis:
    """Values drawn uniformly from ``[low, high]``, or log-uniformly with ``log``."""

    low: float
    high: float
    log: bool = False


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """What to sweep. ``config`` is run-config data (as in a preset); axes are keyed by dotted paths."""

    config: dict
    seeds: tuple[int, ...] = (0,)
    grid: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    random: dict[str, RandomAxis] = dataclasses.field(default_factory=dict)
    num_random: int = 0
    random_seed: int = 0
    groups: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)
    pbt: PBTSpec | None = None  # population-based training within each group (rlx.sweep.pbt)


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of a sweep: its place, its swept values and its full (validated) run config."""

    name: str
    group: int
    setting: int
    seed: int
    values: dict[str, Any]
    config: driver.RunConfig


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs that share static fields and hence one compiled program."""

    index: int
    config: driver.RunConfig
    members: tuple[Member, ...]


MAX_SEEDS = 2**20  # seeds as a count; a list may name any seed below 2**32


def _scalar(text: str) -> Any:
    try:
        return float(text)  # YAML 1.1 reads 3e-4 as a string
    except ValueError:
        return text


def _values(path: str, raw: Any, where: str) -> tuple:
    if isinstance(raw, str):  # CLI form v1,v2,... (a YAML flow sequence, so [64,64],[128,128] works too)
        if raw.strip().endswith(","):  # YAML reads [0.99,] as one value: a value left out by a slip
            raise ConfigError(f"{where}.{path}: a value is missing after the last ',' in {raw!r}")
        try:
            raw = yaml.safe_load(f"[{raw}]")
        except yaml.YAMLError:
            raise ConfigError(f"{where}.{path}: cannot read the values {raw!r}; expected v1,v2,...") from None
        raw = [_scalar(v) if isinstance(v, str) else v for v in raw]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(f"{where}.{path}: expected a non-empty list of values, got {raw!r}")
    repeated = [v for i, v in enumerate(raw) if v in raw[:i]]  # 1e-3 and 0.001 made two equal settings
    if repeated:
        raise ConfigError(f"{where}.{path}: value {repeated[0]!r} given twice in {list(raw)}")
    return tuple(raw)


def _random_axis(path: str, raw: Any) -> RandomAxis:
    if isinstance(raw, str):  # CLI form low:high[:log]
        parts = raw.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ConfigError(f"random.{path}: expected low:high or low:high:log, got {raw!r}")
        raw = {"low": parts[0], "high": parts[1], "log": len(parts) == 3}
    if not isinstance(raw, dict) or set(raw) - {"low", "high", "log"} or not {"low", "high"} <= set(raw):
        raise ConfigError(f"random.{path}: expected {{low: L, high: H, log: true|false}}, got {raw!r}")
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except (TypeError, ValueError):
        raise ConfigError(f"random.{path}: low and high must be numbers, got {raw!r}") from None
    log = raw.get("log", False)
    if not isinstance(log, bool):  # bool("false") is True
        raise ConfigError(f"random.{path}.log: expected true or false, got {log!r}")
    if not low < high or (log and low <= 0):
        raise ConfigError(f"random.{path}: need low < high{' and low > 0 for log' if log else ''}, got {low}, {high}")
    return RandomAxis(low, high, log)


def spec_from_dict(data: dict, base_dir: str = ".") -> SweepSpec:
    """Validates sweep-file data: ``base`` (preset path, relative to ``base_dir``), ``config`` (run-config
    data merged onto it), ``seeds`` (a count or a list), ``grid``, ``random``, ``num_random``,
    ``random_seed``, ``groups`` and ``pbt`` (population-based training: :mod:`rlx.sweep.pbt`)."""
    data = plain_data(data)
    if not isinstance(data, dict):
        raise ConfigError(f"sweep: expected a mapping of base, config, seeds, grid, ...; got {data!r}")
    allowed = ("base", "config", "seeds", "grid", "random", "num_random", "random_seed", "groups", "pbt")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    if data.get("base") is not None and not isinstance(data["base"], str):
        raise ConfigError(f"base: expected a preset name or a path, got {data['base']!r}")
    if not isinstance(data.get("config") or {}, dict):
        raise ConfigError(f"config: expected a mapping of run-config fields, got {data['config']!r}")
    config: dict = {}
    if data.get("base"):
        from rlx import presets

        path = os.path.join(base_dir, data["base"])
        if not os.path.exists(path) and (os.sep in data["base"] or data["base"].endswith(".yaml")):
            # not read from the current directory: a spec means the same wherever it is run from
            raise ConfigError(f"base {data['base']}: no such file next to the spec ({base_dir}) and not a preset name")
        config = presets.load(path if os.path.exists(path) else data["base"], field="base")
        asked = (data.get("config") or {}).get("algo")
        if asked and config.get("algo") and asked != config["algo"]:  # its agent fields are another algo's
            raise ConfigError(f"base {data['base']}: is a preset for algo {config['algo']!r}, not {asked!r}")
    config = merge(config, data.get("config") or {})
    seeds = data.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 0 < seeds <= MAX_SEEDS:  # a count is built into a tuple of seeds (2**32 of them: a MemoryError)
            raise ConfigError(f"seeds: must be > 0 and <= {MAX_SEEDS:,} or a list of seeds, got {seeds}")
        first = int(config.get("seed", 0))
        seeds = tuple(range(first, first + seeds))
    elif isinstance(seeds, (list, tuple)) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds: repeated seed in {list(seeds)}")
        seeds = tuple(seeds)
    else:
        raise ConfigError(f"seeds: expected a count > 0 or a list of seeds >= 0, got {seeds!r}")
    for key in ("grid", "random", "groups"):
        if not isinstance(data.get(key) or {}, dict) or not all(isinstance(p, str) for p in data.get(key) or {}):
            raise ConfigError(f"{key}: expected a mapping of field paths to values, got {data[key]!r}")
    num_random = data.get("num_random", 0)
    if not isinstance(num_random, int) or isinstance(num_random, bool) or num_random < 0:
        raise ConfigError(f"num_random: expected an integer >= 0, got {num_random!r}")
    random_seed = data.get("random_seed", 0)
    if not isinstance(random_seed, int) or isinstance(random_seed, bool) or random_seed < 0:
        raise ConfigError(f"random_seed: expected an integer >= 0, got {random_seed!r}")
    spec = SweepSpec(
        config=config,
        seeds=seeds,
        grid={p: _values(p, v, "grid") for p, v in (data.get("grid") or {}).items()},
        random={p: _random_axis(p, v) for p, v in (data.get("random") or {}).items()},
        num_random=num_random,
        random_seed=random_seed,
        groups={p: _values(p, v, "groups") for p, v in (data.get("groups") or {}).items()},
        pbt=None if data.get("pbt") is None else pbt_from_dict(data["pbt"], config.get("algo", "ppo")),
    )
    check_spec(spec)
    return spec


def spec_to_dict(spec: SweepSpec) -> dict:
    """Plain data for ``sweep.yaml`` (``spec_from_dict`` reads it back)."""
    return {
        "config": spec.config,
        "seeds": list(spec.seeds),
        "grid": {p: list(v) for p, v in spec.grid.items()},
        "random": {p: dataclasses.asdict(a) for p, a in spec.random.items()},
        "num_random": spec.num_random,
        "random_seed": spec.random_seed,
        "groups": {p: list(v) for p, v in spec.groups.items()},
        **({} if spec.pbt is None else {"pbt": pbt_to_dict(spec.pbt)}),
    }


def check_spec(spec: SweepSpec) -> None:
    """Raises a one-line ConfigError for an axis that cannot be swept the way it is requested."""
    if not isinstance(spec, SweepSpec):  # sweep.run({...}) was an AttributeError
        raise ConfigError(
            f"spec: expected a SweepSpec (rlx.sweep.spec_from_dict(data) builds one from a mapping); got "
            f"{type(spec).__name__}"
        )
    algo_name = spec.config.get("algo", "ppo")
    algo = algos.get(algo_name)
    traced = traced_fields(algo.Config)
    traced_paths = ", ".join(f"agent.{f}" for f in traced)
    for kind in ("grid", "random"):
        for path in getattr(spec, kind):
            section, _, name = path.partition(".")
            if section == "agent" and name in traced:
                continue
            if path in FIXED_FIELDS:
                raise ConfigError(f"{kind}.{path}: cannot be swept here; use seeds for seeds and one sweep per algo")
            known = section == "agent" and name.split(".")[0] in {f.name for f in dataclasses.fields(algo.Config)}
            what = "is static (it fixes shapes or the program)" if known or "." not in path else "is not a traced field"
            raise ConfigError(
                f"{kind}.{path}: {what} and cannot be a vmapped axis; traced fields of {algo_name}: "
                f"{traced_paths}; put other fields under groups (one compiled group per value)"
            )
    for path in spec.groups:
        if path in FIXED_FIELDS:
            raise ConfigError(f"groups.{path}: cannot be swept; use seeds for seeds and one sweep per algo")
    both = set(spec.groups) & (set(spec.grid) | set(spec.random)) | set(spec.grid) & set(spec.random)
    if both:
        raise ConfigError(f"{sorted(both)[0]}: appears on two sweep axes")
    paths = [*spec.grid, *spec.random, *spec.groups]
    for outer in paths:  # agent.policy and agent.policy.hidden: one would overwrite the other in every run
        inner = next((p for p in paths if p.startswith(outer + ".")), None)
        if inner is not None:
            raise ConfigError(f"{inner}: is inside {outer}, which is also a sweep axis; sweep one of them")
    runs = (
        len(spec.seeds)
        * max(1, spec.num_random)
        * math.prod(len(v) for v in [*spec.grid.values(), *spec.groups.values()])
    )
    if runs > MAX_SEEDS:  # expanding them would take minutes and gigabytes before any message
        raise ConfigError(f"sweep: {runs:,} runs (seeds x settings); at most {MAX_SEEDS:,}")
    if spec.random and spec.num_random == 0:
        raise ConfigError("num_random: must be > 0 when random axes are given (how many settings to draw)")
    if spec.num_random and not spec.random:
        raise ConfigError("num_random: given without random axes")
    if spec.pbt is not None:  # as a sweep file would be checked (a spec built in Python skips spec_from_dict)
        pbt_from_dict(pbt_to_dict(spec.pbt), algo_name)
        if set(spec.pbt.fields) & set(spec.groups):
            raise ConfigError(f"pbt.fields: {sorted(set(spec.pbt.fields) & set(spec.groups))[0]} is also under groups")
        priors(spec.pbt, spec.grid, spec.random)  # resampling needs each field's prior


def _assign(data: dict, path: str, value: Any) -> dict:
    return merge(data, parse_assignment(f"{path}={json.dumps(value)}"))


def _lookup(data: dict, path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return tuple(data) if isinstance(data, list) else data


def traced_settings(spec: SweepSpec) -> list[dict[str, float]]:
    """The vmapped settings: the grid's cartesian product, times ``num_random`` random draws (drawn
    once from ``random_seed``), as ``{path: value}``."""
    grid = [dict(zip(spec.grid, combo)) for combo in itertools.product(*spec.grid.values())]
    if not spec.random:
        return grid
    rng = np.random.default_rng(spec.random_seed)
    draws = []
    for _ in range(spec.num_random):
        draw = {}
        for path, axis in spec.random.items():
            draw[path] = float(axis_value(axis.low, axis.high, axis.log, rng.uniform()))
        draws.append(draw)
    return [{**point, **draw} for point in grid for draw in draws]


def expand(spec: SweepSpec) -> list[Group]:
    """All groups and runs, each run config validated (a bad value names its field before compiling)."""
    settings = traced_settings(spec)
    group_points = [dict(zip(spec.groups, combo)) for combo in itertools.product(*spec.groups.values())]
    groups, setting_index = [], 0
    for g, point in enumerate(group_points):
        data = spec.config
        for path, value in point.items():
            data = _assign(data, path, value)
        members = []
        for setting in settings:
            values = {**point, **setting}
            run_data = data
            for path, value in setting.items():
                run_data = _assign(run_data, path, value)
            for seed in spec.seeds:
                try:
                    config = driver.build_config({**run_data, "seed": seed})
                except ConfigError as e:
                    where = ", ".join(f"{p}={v}" for p, v in values.items())
                    raise ConfigError(f"sweep run {where or 'base'} (seed {seed}): {e}") from None
                values = {path: _lookup(to_dict(config), path) for path in values}  # as validated: 3e-4 -> 0.0003
                members.append(Member(f"h{setting_index:02d}-seed{seed}", g, setting_index, seed, values, config))
            setting_index += 1
        groups.append(Group(g, members[0].config, tuple(members)))
    return groups
