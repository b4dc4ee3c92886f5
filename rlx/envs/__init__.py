"""Env registry: ``make("suite/name")`` for ``brax``, ``gymnax``, ``jumanji`` and ``playground`` envs, and ``probe`` envs
with known values (``rlx.envs.probes``).

Options can be given as fields of :class:`EnvConfig` or in the name's query string,
``"brax/ant?backend=mjx&episode_length=500"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import urllib.parse

from rlx.config import ConfigError, field, from_dict, to_dict
from rlx.envs.adapters import BraxEnv, EnvError, GymnaxEnv, JumanjiEnv, PlaygroundEnv
from rlx.envs.base import Box, Discrete, Env, EnvStep, Space, Wrapper
from rlx.envs.probes import PROBES, ProbeEnv
from rlx.envs.randomization import DomainRandomization, RandomizationConfig
from rlx.envs.wrappers import (
    ActionRepeat,
    AutoReset,
    EpisodeStats,
    ObservationSubset,
    TimeLimit,
    Vmap,
    VmapAutoReset,
    training_env,
)

SUITES = ("brax", "gymnax", "jumanji", "playground", "probe")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which env to make and how."""

    name: str = field("gymnax/CartPole-v1", doc="'suite/name', suite one of brax, gymnax, jumanji, playground, probe")
    backend: str | None = field(
        None, doc="brax: generalized|mjx|positional|spring; playground: jax|warp (default jax on CPU)"
    )
    episode_length: int | None = field(
        None, gt=0, lt=2**31, doc="env steps before truncation (suite default if null)"
    )  # counters are int32
    action_repeat: int = field(1, gt=0, lt=2**31, doc="repeat each action this many env steps")
    observe: tuple[int, ...] | None = field(
        None, doc="keep only these entries of a flat observation (null: all), e.g. [0, 2] for CartPole's positions"
    )
    privileged: bool = field(
        False, doc="with observe: dict observations {state: the observed entries, privileged_state: all of them}"
    )
    randomize: RandomizationConfig = field(
        RandomizationConfig(), doc="domain randomization of brax/Playground physics, drawn per env at each reset"
    )

    def check(self) -> None:
        suite, _, rest = self.name.partition("/")
        if suite not in SUITES or not rest:
            close = difflib.get_close_matches(suite, SUITES, n=1) if rest else []
            hint = f" (did you mean {close[0]}/{rest}?)" if close else ""
            raise ConfigError(
                f"env.name: expected 'suite/name' with suite one of {', '.join(SUITES)}; got {self.name!r}{hint}"
            )
        if "?" in rest:
            raise ConfigError(f"env.name: options belong in env fields here, not in the name; got {self.name!r}")
        if self.observe is not None and len(set(self.observe)) != len(self.observe):
            raise ConfigError(
                f"env.observe: each index once (a repeated entry feeds the policy twice); got {list(self.observe)}"
            )
        if self.privileged and self.observe is None:
            raise ConfigError("env.privileged: needs env.observe (the entries the state key keeps)")
        if self.randomize.enabled and suite not in ("brax", "playground"):
            raise ConfigError(f"env.randomize: brax and playground envs only; got {self.name!r}")


def parse_env_spec(spec: str) -> dict:
    """``"brax/ant?backend=mjx"`` -> ``{"name": "brax/ant", "backend": "mjx"}`` (values YAML-typed)."""
    import yaml

    name, _, query = spec.partition("?")
    out: dict = {"name": name}
    allowed = [f.name for f in dataclasses.fields(EnvConfig) if f.name != "name"]
    # a '+' stays a '+' (1e+1), as a user typing a query string by hand means, not a space
    for key, value in urllib.parse.parse_qsl(query.replace("+", "%2B"), keep_blank_values=True):
        if key not in allowed:  # "name" included: the env is named before the "?"
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"env option {key!r} in {spec!r}: unknown{hint}; allowed: {', '.join(allowed)}")
        if key in out:
            raise ConfigError(f"env option {key!r} in {spec!r}: given twice")
        try:
            out[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            raise ConfigError(f"env option {key!r} in {spec!r}: {value!r} is not a valid value") from None
    return out


def _randomized(env: Env, spec: EnvConfig) -> Env:
    return DomainRandomization(env, spec.randomize) if spec.randomize.enabled else env


def evaluation_spec(spec: EnvConfig) -> EnvConfig:
    """The env evaluation episodes run on: without domain randomization unless ``randomize.evaluate`` asks."""
    if spec.randomize.enabled and spec.randomize.evaluate == "nominal":
        return dataclasses.replace(spec, randomize=RandomizationConfig())
    return spec


def make(spec: str | dict | EnvConfig, **options) -> Env:
    """Makes one (unbatched) env: adapter, time limit, action repeat.

    ``spec`` is an :class:`EnvConfig`, a mapping of its fields or a ``"suite/name?opt=value"`` string; keyword
    options are :class:`EnvConfig` fields. Raises :class:`EnvError` (one line) for unknown envs or options.
    """
    if isinstance(spec, str):
        spec = parse_env_spec(spec)
    elif isinstance(spec, EnvConfig):  # validated again: a dataclass built or replaced in Python was never checked
        spec = to_dict(spec)
    elif not isinstance(spec, dict):
        raise ConfigError(f"env: expected 'suite/name', a mapping of env fields or an EnvConfig; got {spec!r}")
    spec = from_dict(EnvConfig, {**spec, **options}, prefix="env.")
    suite, _, name = spec.name.partition("/")
    if suite == "gymnax":
        if spec.backend is not None:
            raise EnvError(f"env {spec.name}: gymnax envs have no backend option; got {spec.backend!r}")
        env: Env = GymnaxEnv(name, spec.episode_length)
    elif suite == "brax":
        env = TimeLimit(_randomized(BraxEnv(name, spec.backend), spec), spec.episode_length or 1000)
    elif suite == "jumanji":
        if spec.backend is not None:
            raise EnvError(f"env {spec.name}: Jumanji envs have no backend option; got {spec.backend!r}")
        base = JumanjiEnv(name)
        if base.max_episode_steps and (spec.episode_length or 0) > base.max_episode_steps:
            raise EnvError(  # Jumanji's own limit ends the episode first (as a termination), whatever rlx's says
                f"env.episode_length: {spec.name} ends its episodes after {base.max_episode_steps} steps itself; "
                f"got {spec.episode_length} (at most {base.max_episode_steps})"
            )
        # Jumanji truncates at its own time limit where it has one; rlx's TimeLimit adds one where it has not.
        env = (
            TimeLimit(base, spec.episode_length or 1000) if spec.episode_length or not base.max_episode_steps else base
        )
    elif suite == "probe":
        if spec.backend is not None or spec.episode_length is not None:
            raise EnvError(f"env {spec.name}: probe envs have no backend or episode_length option")
        kind, _, variant = name.partition("-")
        if variant not in ("", "box"):
            raise EnvError(f"env {spec.name}: expected probe/<kind> or probe/<kind>-box; kinds: {', '.join(PROBES)}")
        env = ProbeEnv(kind, box=variant == "box")
    elif suite == "playground":
        base = PlaygroundEnv(name, spec.backend)
        env = TimeLimit(_randomized(base, spec), spec.episode_length or base.max_episode_steps)
    else:
        raise EnvError(f"env {spec.name}: unknown suite {suite!r}; available: {', '.join(SUITES)}")
    if spec.observe is not None:
        size = env.observation_shape[0] if len(env.observation_shape) == 1 else None
        if size is None:
            raise EnvError(
                f"env.observe: needs a flat observation; {spec.name}'s is {env.observation_shape}; got {list(spec.observe)}"
            )
        if not spec.observe or any(not 0 <= i < size for i in spec.observe):
            raise EnvError(
                f"env.observe: indices into the {env.observation_shape} observation of {spec.name} (each in "
                f"0..{size - 1}); got {list(spec.observe)}"
            )
        env = ObservationSubset(env, spec.observe, spec.privileged)
    if spec.action_repeat > 1:
        env = ActionRepeat(env, spec.action_repeat)
    return env


__all__ = [
    "ActionRepeat",
    "AutoReset",
    "Box",
    "Discrete",
    "DomainRandomization",
    "Env",
    "EnvConfig",
    "EnvError",
    "EnvStep",
    "EpisodeStats",
    "ObservationSubset",
    "PROBES",
    "ProbeEnv",
    "RandomizationConfig",
    "Space",
    "TimeLimit",
    "Vmap",
    "VmapAutoReset",
    "Wrapper",
    "evaluation_spec",
    "make",
    "parse_env_spec",
    "training_env",
]
