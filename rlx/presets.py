"""Packaged presets: tuned run configs shipped in ``rlx/configs/`` (package data, so they work after a plain
install and from any directory; the repository's ``configs/`` links there).

A preset is a YAML run config (``algo``, ``env``, budget, ``agent``). ``_index.yaml`` records what each
reaches and which one ``rlx train ALGO --env ENV`` picks by default for its (algorithm, env) pair: ``default:
true`` for the file's own env, or a list of envs for a preset tuned for a family of them (e.g. brax's locomotion
envs, Playground's DM Control Suite), whose env options (backend, episode length) then carry over.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import yaml

from rlx.config import ConfigError, load_yaml

PRESETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
INDEX = "_index.yaml"


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    path: str
    algo: str
    env: str  # the env name (suite/name), without options
    total_env_steps: int | None
    default_envs: tuple[str, ...]  # the envs ``rlx train ALGO --env ENV`` picks it for (empty: none)
    reaches: str

    @property
    def default(self) -> bool:
        return bool(self.default_envs)


def _index() -> dict:
    with open(os.path.join(PRESETS_DIR, INDEX)) as f:
        return yaml.safe_load(f) or {}


@functools.cache
def all_presets() -> tuple[Preset, ...]:
    """Every packaged preset, sorted by name (package data: read once per process)."""
    index = _index()
    found = []
    for file in sorted(os.listdir(PRESETS_DIR)):
        if not file.endswith(".yaml") or file.startswith("_"):
            continue
        path = os.path.join(PRESETS_DIR, file)
        data = load_yaml(path)
        name = file[: -len(".yaml")]
        about = index.get(name, {})
        env = (data.get("env") or {}).get("name", "gymnax/CartPole-v1")
        default = about.get("default", False)
        default_envs = tuple(default) if isinstance(default, list) else (env,) if default else ()
        found.append(
            Preset(
                name,
                path,
                data.get("algo", "ppo"),
                env,
                data.get("total_env_steps"),
                default_envs,
                about.get("reaches", "not recorded"),
            )
        )
    return tuple(found)


def names() -> list[str]:
    return [p.name for p in all_presets()]


def resolve(name_or_path: str, field: str = "--config") -> str:
    """The file of ``--config`` VALUE: an existing path, else a packaged preset named ``sac_pendulum``,
    ``sac_pendulum.yaml`` or ``configs/sac_pendulum.yaml`` (the README's form, from any directory)."""
    if os.path.exists(name_or_path):
        return name_or_path
    folder, name = os.path.split(name_or_path)
    name = name[: -len(".yaml")] if name.endswith(".yaml") else name
    path = os.path.join(PRESETS_DIR, name + ".yaml")
    if folder.rstrip(os.sep) in ("", "configs") and os.path.exists(path) and not name.startswith("_"):
        return path
    raise ConfigError(
        f"{field} {name_or_path}: no such file or packaged preset; presets: {', '.join(names())} (rlx presets)"
    )


def load(name_or_path: str, field: str = "--config") -> dict:
    """The run-config data of a preset name or a YAML path (``field`` names the option in errors)."""
    return load_yaml(resolve(name_or_path, field))


def default_for(algo: str, env_name: str) -> Preset | None:
    """The preset ``rlx train`` uses for ``algo`` on ``env_name`` when no ``--config`` is given, if any."""
    for preset in all_presets():
        if preset.algo == algo and env_name in preset.default_envs:
            return preset
    return None
