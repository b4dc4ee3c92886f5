"""Population-based training (Jaderberg et al., 2017) over a sweep group's vmapped runs.

Every ``every`` chunks the group's runs are ranked by a logged return; each run of the bottom ``fraction``
becomes a copy of a run drawn uniformly from the top ``fraction`` (exploit: its whole train state, networks,
optimizer, replay buffer, envs and observation statistics, but not its PRNG key: the copy folds its own index
into its own key, so it does not repeat its source's draws), and each field in ``fields`` of the copy is multiplied by a factor drawn from ``perturb`` (explore: the
paper's 0.8 or 1.2). The traced hyperparameters live in the train state (``state.hparams``), so a new value
takes effect in the next chunk without compiling anything. With ``resample`` each field of a copy is, with that
probability, drawn afresh from its prior (its grid values or random axis) instead (the paper's other explore). Choices come from a NumPy generator seeded with
``(seed, group, chunk)`` and the step runs before the chunk's checkpoint, so a stopped sweep resumes bitwise.
A run that diverges waits for the next step (logging a ``diverged`` row per chunk) and continues from it as a
copy of a top run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlx import algos
from rlx.config import ConfigError, traced_fields, unread_traced_fields

METRICS = ("eval/episode_return", "train/episode_return")


@dataclasses.dataclass(frozen=True)
class PBTSpec:
    """When and how a sweep's runs exploit and explore (``pbt:`` in a sweep file)."""

    fields: tuple[str, ...]  # agent.<traced field> paths to perturb
    every: int = 1  # chunks between steps
    fraction: float = 0.25  # bottom fraction replaced by copies of the top fraction
    perturb: tuple[float, ...] = (0.8, 1.2)  # factors drawn per field
    metric: str = "eval/episode_return"
    seed: int = 0
    resample: float = 0.0  # per replaced run and field: probability of a fresh draw from the field's prior


def axis_value(low: float, high: float, log: bool, u: float) -> float:
    """The value at quantile ``u`` of a random axis (uniform, or log-uniform with ``log``)."""
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def priors(spec: PBTSpec, grid: dict[str, tuple], random: dict[str, Any]) -> tuple[Any, ...]:
    """Per field of ``spec.fields``, the prior a resample draws from: its grid values (a tuple) or its random
    axis (``low``, ``high``, ``log``). ``()`` without resampling; a ConfigError for a field with neither."""
    if spec.resample == 0:
        return ()
    missing = [p for p in spec.fields if p not in grid and p not in random]
    if missing:
        raise ConfigError(
            f"pbt.resample: {missing[0]} is under neither grid nor random, so it has no prior to draw from; "
            "sweep it there, or set pbt.resample: 0"
        )
    return tuple(tuple(grid[p]) if p in grid else random[p] for p in spec.fields)


def _draw(prior: Any, rng: np.random.Generator) -> float:
    if isinstance(prior, tuple):
        return float(prior[rng.integers(len(prior))])
    return axis_value(prior.low, prior.high, prior.log, rng.uniform())


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pbt_from_dict(data: Any, algo_name: str) -> PBTSpec:
    """Validates the ``pbt:`` section of a sweep spec for algorithm ``algo_name``."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"pbt: expected a mapping of fields, every, fraction, perturb, metric, seed, resample; got {data!r}"
        )
    allowed = [f.name for f in dataclasses.fields(PBTSpec)]
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ConfigError(f"pbt.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    fields = data.get("fields")
    if isinstance(fields, str):  # the CLI form a,b
        fields = [f.strip() for f in fields.split(",")]
    traced = traced_fields(algos.get(algo_name).Config)
    allowed_fields = ", ".join(f"agent.{f}" for f in traced)
    if not isinstance(fields, (list, tuple)) or not fields:
        raise ConfigError(f"pbt.fields: expected a non-empty list of traced fields ({allowed_fields}); got {fields!r}")
    for path in fields:
        if not isinstance(path, str) or not path.startswith("agent.") or path.removeprefix("agent.") not in traced:
            raise ConfigError(
                f"pbt.fields: {path!r} is not a traced field of {algo_name} (the ones in the train state); "
                f"allowed: {allowed_fields}"
            )
    if len(set(fields)) != len(fields):
        raise ConfigError(f"pbt.fields: a field given twice in {list(fields)}")
    every = data.get("every", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"pbt.every: expected a whole number of chunks >= 1; got {every!r}")
    fraction = data.get("fraction", 0.25)
    if not _number(fraction) or not 0 < fraction <= 0.5:
        raise ConfigError(
            f"pbt.fraction: expected a number in (0, 0.5] (bottom and top may not overlap); got {fraction!r}"
        )
    perturb = data.get("perturb", [0.8, 1.2])
    if not isinstance(perturb, (list, tuple)) or not perturb or not all(_number(p) and p > 0 for p in perturb):
        raise ConfigError(f"pbt.perturb: expected a non-empty list of factors > 0; got {perturb!r}")
    metric = data.get("metric", METRICS[0])
    if metric not in METRICS:
        raise ConfigError(f"pbt.metric: must be one of {', '.join(METRICS)}; got {metric!r}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"pbt.seed: expected an integer >= 0; got {seed!r}")
    resample = data.get("resample", 0.0)
    if not _number(resample) or not 0 <= resample <= 1:
        raise ConfigError(f"pbt.resample: expected a probability in [0, 1]; got {resample!r}")
    return PBTSpec(
        tuple(fields), every, float(fraction), tuple(float(p) for p in perturb), metric, seed, float(resample)
    )


def pbt_to_dict(spec: PBTSpec) -> dict:
    return {**dataclasses.asdict(spec), "fields": list(spec.fields), "perturb": list(spec.perturb)}


def check_group(spec: PBTSpec, plan: Any, config: Any, num_runs: int, group_index: int) -> None:
    """A ConfigError when a group cannot run ``spec``: too few runs to replace any, a field that is off
    (null), or (ranking by evaluation) a step after a chunk without an evaluation."""
    if replaced_count(spec.fraction, num_runs) < 1:
        raise ConfigError(
            f"pbt.fraction: {spec.fraction:g} of group {group_index}'s {num_runs} runs replaces none; "
            f"a population needs at least {math.ceil(1 / spec.fraction)} runs (seeds x settings)"
        )
    if not steps(spec, plan.num_chunks):
        raise ConfigError(
            f"pbt.every: {spec.every} chunk(s) between steps, but group {group_index} trains {plan.num_chunks} "
            f"chunk(s) and a step runs only before the last: none would run; lower pbt.every or raise num_chunks"
        )
    for path in spec.fields:
        if getattr(config.agent, path.removeprefix("agent.")) is None:
            raise ConfigError(f"pbt.fields: {path} is null (off) in group {group_index}; there is nothing to perturb")
        unread = unread_traced_fields(config.agent).get(path.removeprefix("agent."))
        if unread is not None:
            raise ConfigError(f"pbt.fields: {path} would change nothing in group {group_index}: {unread}")
    if spec.metric == "eval/episode_return":
        missing = [c + 1 for c in steps(spec, plan.num_chunks) if not plan.evaluates_after(c, config.eval_every)]
        if missing:
            fix = "make pbt.every a multiple of eval_every" if config.eval_every else "set eval_every"
            raise ConfigError(
                f"pbt.every: a step after chunk {missing[0]} ranks by eval/episode_return, but eval_every "
                f"({config.eval_every}) evaluates no run there; {fix} or set pbt.metric: train/episode_return"
            )


def replaced_count(fraction: float, num_runs: int) -> int:
    """How many runs a step replaces (and how many it copies from): ``floor(fraction * num_runs)``."""
    return math.floor(fraction * num_runs + 1e-9)  # 0.29 * 100 is 28.999999999999996 in floats


def steps(spec: PBTSpec, num_chunks: int) -> list[int]:
    """The chunk indices after which a step runs (never after the last chunk: nothing would train on it)."""
    return [c for c in range(num_chunks - 1) if (c + 1) % spec.every == 0]


def choose(
    scores: np.ndarray,
    alive: np.ndarray,
    fraction: float,
    perturb: tuple[float, ...],
    num_fields: int,
    rng: Any,
    resample: float = 0.0,
    field_priors: tuple[Any, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncation selection over a population of ``len(scores)`` runs. ``scores [runs]`` (NaN: no value, e.g. no
    episode ended in the chunk: the run is neither copied nor replaced), ``alive [runs]`` (False: diverged). The
    bottom ``floor(fraction * runs)`` continue as copies of runs drawn from as many of the best scored runs (fewer
    when fewer than twice as many have a score: a top run is never replaced); a diverged run ranks below every
    living one and is always replaced, even past ``fraction`` (it has no state to train on). Returns ``sources [runs]`` (the run each
    one continues as: itself unless replaced), ``factors [runs, num_fields]`` (1 unless replaced) and ``fresh
    [runs, num_fields]``: with probability ``resample`` a replaced run's field is drawn from its prior
    (``field_priors``, see :func:`priors`) instead of perturbed (NaN: perturbed or kept). Ties rank by run index.
    Draws per replaced run, in run order: its source, its factors, then (resampling) one uniform per field and
    each resampled field's value."""
    runs = np.arange(len(scores))
    scored, dead = runs[alive & ~np.isnan(scores)], runs[~alive]
    ranked = scored[np.lexsort((scored, -scores[scored]))]  # best first; equal scores: lower index first
    count = replaced_count(fraction, len(scores))
    sources, factors = runs.copy(), np.ones((len(scores), num_fields))
    fresh = np.full((len(scores), num_fields), np.nan)
    top = ranked[:count]
    if top.size == 0:  # nothing replaces (count 0), or nothing is scored to copy
        return sources, factors, fresh
    worst = ranked[len(ranked) - min(max(count - len(dead), 0), len(ranked) - len(top)) :]
    for run in np.sort(np.concatenate([dead, worst])):
        sources[run] = rng.choice(top)
        factors[run] = rng.choice(np.asarray(perturb), size=num_fields)
        if resample > 0:
            for j, u in enumerate(rng.uniform(size=num_fields)):
                if u < resample:
                    fresh[run, j] = _draw(field_priors[j], rng)
    return sources, factors, fresh


def generator(spec: PBTSpec, group_index: int, chunk: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, group_index, chunk])


def _bounded(agent_cls: type, name: str, old: jax.Array, new: jax.Array) -> jax.Array:
    """``new`` kept inside the field's declared range: clipped to ``ge``/``le``, and the old value where a
    strict bound (``gt``/``lt``) would be crossed."""
    meta = next(f.metadata for f in dataclasses.fields(agent_cls) if f.name == name)
    if meta.get("ge") is not None:
        new = jnp.maximum(new, meta["ge"])
    if meta.get("le") is not None:
        new = jnp.minimum(new, meta["le"])
    inside = jnp.ones_like(new, bool)
    if meta.get("gt") is not None:
        inside &= new > meta["gt"]
    if meta.get("lt") is not None:
        inside &= new < meta["lt"]
    return jnp.where(inside, new, old)


def apply(
    state: Any,
    sources: jax.Array,
    factors: jax.Array,
    alive: jax.Array,
    fields: tuple[str, ...],
    agent_cls: type,
    fresh: jax.Array | None = None,
) -> Any:
    """Stacked train states ``[runs, ...]`` after a step: each run's state is its source's, with ``fields``
    multiplied by ``factors [runs, fields]`` (within their ranges) or, where ``fresh [runs, fields]`` is not NaN,
    set to it (a resampled value), except the PRNG key: a replaced run folds its
    index into its own key (runs of one seed share their keys: a copy must not repeat its source's draws), or,
    diverged (``alive`` False), into its source's (a resumed sweep restores no key for a diverged run); a kept
    run's state is unchanged. Pure, for ``jax.jit``."""
    runs = jnp.arange(sources.shape[0])
    copied = jax.tree.map(lambda x: x[sources], state)
    own = jnp.where(alive[:, None], state.key, copied.key)
    keys = jnp.where((sources != runs)[:, None], jax.vmap(jax.random.fold_in)(own, runs), state.key)
    copied = copied.replace(key=keys)
    hparams = copied.hparams
    for j, path in enumerate(fields):
        name = path.removeprefix("agent.")
        old = hparams.get(name)
        new = _bounded(agent_cls, name, old, old * factors[:, j].astype(old.dtype))
        if fresh is not None:
            new = jnp.where(jnp.isnan(fresh[:, j]), new, fresh[:, j].astype(old.dtype))
        hparams = hparams.replace(**{name: new})
    return copied.replace(hparams=hparams)


def values(state_hparams: Any, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{"pbt/<field>": [runs]}`` from stacked host hyperparameters."""
    return {f"pbt/{p.removeprefix('agent.')}": np.asarray(state_hparams.get(p.removeprefix("agent."))) for p in fields}
