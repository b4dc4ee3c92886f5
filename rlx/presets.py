"""Packaged presets: tuned run configs shipped in ``rlx/configs/`` (package data, so they work after a plain
install and from any directory; the repository's ``configs/`` links there).

A preset is a YAML run config (``algo``, ``env``, budget, ``agent``). ``_index.yaml`` records what each
reaches and which one ``rlx train ALGO --env ENV`` picks by default for its (algorithm, env) pair: ``default:
true`` for the file's own env, or a list of envs for a preset tuned for a family of them (e.g. brax's locomotion
envs, Playground's DM Control Suite), whose env options (backend, episode length) then carry over.

Any run config, packaged or a user's file, may start with ``extends: NAME`` (a packaged preset, or a YAML path
relative to the extending file): its data is the parent's with the file's own keys merged on top, recursively
(mappings merge key by key, everything else is replaced). ``load`` resolves the chain; the run's ``config.yaml``
records the result, so a run never depends on the files it came from.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from rlx.config import ConfigError, load_yaml, merge

PRESETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
SUITES_DIR = os.path.join(PRESETS_DIR, "suites")
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
    return load_yaml(os.path.join(PRESETS_DIR, INDEX))


@functools.cache
def all_presets() -> tuple[Preset, ...]:
    """Every packaged preset, sorted by name (package data: read once per process)."""
    index = _index()
    found = []
    for name in names():
        path = os.path.join(PRESETS_DIR, name + ".yaml")
        data = load_file(path)
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


def names(subfolder: str = "") -> list[str]:
    """The packaged presets' names (or, with ``subfolder`` ``sweeps``, the sweep specs'), sorted (from the folder,
    so errors can list them without loading any)."""
    folder = os.path.join(PRESETS_DIR, subfolder)
    return sorted(f[: -len(".yaml")] for f in os.listdir(folder) if f.endswith(".yaml") and not f.startswith("_"))


def _packaged(name_or_path: str, subfolder: str) -> str | None:
    """An existing file ``name_or_path``, else the packaged ``configs/<subfolder>/NAME.yaml`` it names as ``NAME``,
    ``NAME.yaml`` or ``configs/<subfolder>/NAME.yaml`` (the README's form, from any directory), else None. A folder
    named like a packaged file does not hide it."""
    if os.path.isfile(name_or_path):
        return name_or_path
    folder, name = os.path.split(name_or_path)
    name = name[: -len(".yaml")] if name.endswith(".yaml") else name
    path = os.path.join(PRESETS_DIR, subfolder, name + ".yaml")
    accepted = ("", os.path.join("configs", subfolder).rstrip(os.sep), subfolder)
    if folder.rstrip(os.sep) in accepted and os.path.exists(path) and not name.startswith("_"):
        return path
    return None


def resolve(name_or_path: str, field: str = "--config") -> str:
    """The file of ``--config`` VALUE: an existing path, else a packaged preset named ``sac_pendulum``,
    ``sac_pendulum.yaml`` or ``configs/sac_pendulum.yaml``."""
    path = _packaged(name_or_path, "")
    if path is None:
        raise ConfigError(
            f"{field} {name_or_path}: no such file or packaged preset; presets: {', '.join(names())} (rlx presets)"
        )
    return path


def resolve_sweep(name_or_path: str) -> str:
    """The file of ``--spec VALUE``: an existing path, else a packaged sweep spec named ``ppo_cartpole_pbt``,
    ``ppo_cartpole_pbt.yaml`` or ``configs/sweeps/ppo_cartpole_pbt.yaml``."""
    path = _packaged(name_or_path, "sweeps")
    if path is None:
        packaged = ", ".join(names("sweeps"))
        raise ConfigError(f"--spec {name_or_path}: no such file or packaged sweep; packaged: {packaged}")
    return path


def load(name_or_path: str, field: str = "--config") -> dict:
    """The run-config data of a preset name or a YAML path, ``extends`` resolved (``field`` names the option in
    errors)."""
    return load_file(resolve(name_or_path, field))


def load_file(path: str, _chain: tuple[str, ...] = ()) -> dict:
    """The run-config data of the YAML file at ``path`` with its ``extends`` chain merged in (parents first)."""
    data = load_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    where = f"{path}: extends"
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{where}: expected a packaged preset name or a YAML path, got {parent!r}")
    nearby = os.path.join(os.path.dirname(path), parent)
    if os.path.isfile(nearby):
        parent_path = nearby
    else:
        name = parent[: -len(".yaml")] if parent.endswith(".yaml") else parent
        parent_path = os.path.join(PRESETS_DIR, name + ".yaml")
        if os.sep in name or name.startswith("_") or not os.path.isfile(parent_path):
            raise ConfigError(
                f"{where} {parent}: no such file next to it and no such packaged preset; presets: {', '.join(names())}"
            )
    chain = (*_chain, os.path.realpath(path))
    if os.path.realpath(parent_path) in chain:
        cycle = " -> ".join(os.path.basename(p) for p in (*chain, os.path.realpath(parent_path)))
        raise ConfigError(f"{where} {parent}: a cycle ({cycle})")
    return merge(load_file(parent_path, chain), data)


def default_for(algo: str, env_name: str) -> Preset | None:
    """The preset ``rlx train`` uses for ``algo`` on ``env_name`` when no ``--config`` is given, if any."""
    for preset in all_presets():
        if preset.algo == algo and env_name in preset.default_envs:
            return preset
    return None


def suite_names() -> list[str]:
    """The packaged reproduction suites (``rlx bench``), by name."""
    return sorted(f.removesuffix(".yaml") for f in os.listdir(SUITES_DIR) if f.endswith(".yaml"))
