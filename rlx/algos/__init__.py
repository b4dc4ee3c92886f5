"""The algorithm contract and registry.

An algorithm is a module that satisfies :class:`Algorithm`: a validated ``Config`` dataclass (fields marked
``traced=True`` become ``state.hparams``), a ``State`` pytree, and pure functions ``init``, ``train_step``,
``act``, ``value`` and ``steps_per_iteration``. The registry drives the CLI (``rlx train <name>``, ``rlx
algos``), the driver and sweeps, and the conformance tests (``tests/test_conformance.py``), which every
registered algorithm must pass.

Algorithms outside rlx are found in every process (so ``rlx eval``, ``export``, ``plot`` and
``rlx.inference.load`` read their runs too) from the ``rlx.algos`` entry-point group of installed packages
(``[project.entry-points."rlx.algos"] my_algo = "my_package.my_algo"``) and from ``RLX_ALGOS``
(``my_algo=my_module,other=pkg.other``, modules importable from ``sys.path``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
from typing import Any, Protocol, runtime_checkable

import jax

from rlx.algos import (
    consistency_ac,
    cqn,
    crossq,
    dqn,
    iqn,
    iterated_dqn,
    mdpo,
    mdpo_offpolicy,
    ppo,
    pqn,
    sac,
    simbav2,
    td3,
)
from rlx.config import ConfigError
from rlx.envs import Env
from rlx.nets import Net, PolicyNet
from rlx.nets.spec import conv_output_shape, network_input


@runtime_checkable
class Algorithm(Protocol):
    """What an algorithm module provides. ``train_step`` metrics are scalars; ``episode_return_sum``,
    ``episode_length_sum`` and ``episode_count`` are summed over a chunk, all others averaged."""

    DESCRIPTION: str  # one line, shown by ``rlx algos``
    ACTION_SPACES: tuple[str, ...]  # "discrete" and/or "box"
    Config: type  # frozen dataclass of rlx.config fields
    State: type  # pytree with at least params, key, iteration, hparams

    def init(self, config: Any, env: Env, key: jax.Array, total_iterations: int) -> Any:
        """A fresh train state; ``total_iterations`` is the run's length (for schedules)."""

    def train_step(self, config: Any, env: Env, state: Any) -> tuple[Any, dict]:
        """One iteration (collect and update); pure, jittable, vmappable over states."""

    def act(
        self, config: Any, env: Env, state: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Env actions for a batch of raw observations."""

    def value(self, config: Any, env: Env, state: Any, obs: jax.Array) -> jax.Array:
        """The algorithm's estimate of the state value under its evaluation policy, for raw observations."""

    def steps_per_iteration(self, config: Any) -> int:
        """Agent steps one ``train_step`` collects."""


ALGORITHMS: dict[str, types.ModuleType] = {}


def register(name: str, module: types.ModuleType) -> None:
    """Adds ``module`` under ``name``; it must satisfy :class:`Algorithm`."""
    if not isinstance(module, Algorithm):
        missing = [
            m
            for m in (
                "DESCRIPTION",
                "ACTION_SPACES",
                "Config",
                "State",
                "init",
                "train_step",
                "act",
                "value",
                "steps_per_iteration",
            )
            if not hasattr(module, m)
        ]
        raise TypeError(f"algorithm {name!r} ({module.__name__}) lacks {', '.join(missing)}")
    ALGORITHMS[name] = module


for _name, _module in (
    ("ppo", ppo),
    ("sac", sac),
    ("td3", td3),
    ("dqn", dqn),
    ("crossq", crossq),
    ("simbav2", simbav2),
    ("pqn", pqn),
    ("mdpo", mdpo),
    ("mdpo_offpolicy", mdpo_offpolicy),
    ("consistency_ac", consistency_ac),
    ("iterated_dqn", iterated_dqn),
    ("iqn", iqn),
    ("cqn", cqn),
):
    register(_name, _module)


_BUILT_IN = tuple(ALGORITHMS)


def plugin_sources() -> dict[str, str]:
    """Algorithm name -> module path of the algorithms outside rlx: the ``rlx.algos`` entry points of installed
    packages, then ``RLX_ALGOS`` (``name=module,...``), which wins where both name one."""
    from importlib.metadata import entry_points

    sources = {point.name: point.value for point in entry_points(group="rlx.algos")}
    for item in filter(None, (part.strip() for part in os.environ.get("RLX_ALGOS", "").split(","))):
        name, sep, module = (part.strip() for part in item.partition("="))
        if not (sep and name and module):
            raise ConfigError(f"RLX_ALGOS: entries are name=module, separated by commas; got {item!r}")
        sources[name] = module
    return sources


def load_plugins() -> dict[str, types.ModuleType]:
    """Registers the algorithms of :func:`plugin_sources` not registered yet and returns the registry (read
    again on each call: it runs where a name is not found, and for ``rlx algos``). A built-in algorithm's name, a
    module that fails to import or one that lacks the contract is a one-line error."""
    for name, path in plugin_sources().items():
        if name in _BUILT_IN:
            raise ConfigError(
                f"algorithm plugin {name!r} ({path}): {name} is a built-in algorithm; choose another name"
            )
        module_name = path.split(":")[0]
        if name in ALGORITHMS and ALGORITHMS[name].__name__ == module_name:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # the plugin's own failure, named with its source
            raise ConfigError(
                f"algorithm plugin {name!r}: importing {path} failed: {type(error).__name__}: {error}"
            ) from error
        try:
            register(name, module)
        except TypeError as error:
            raise ConfigError(f"algorithm plugin {name!r}: {error}") from error
    return ALGORITHMS


def get(name: str) -> types.ModuleType:
    if name not in ALGORITHMS:
        load_plugins()
    if name not in ALGORITHMS:
        raise ConfigError(
            f"algo: unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)} (one outside rlx registers "
            "through RLX_ALGOS=name=module or its package's rlx.algos entry point)"
        )
    return ALGORITHMS[name]


def supports(name: str, env: Env) -> str | None:
    """None if algorithm ``name`` can train on ``env``, else why not (its action space, dict observations)."""
    algo = get(name)
    kind = env.action_space.kind
    if kind not in algo.ACTION_SPACES:
        return f"{name} needs {' or '.join(algo.ACTION_SPACES)} actions, got {kind}"
    if isinstance(env.observation_shape, dict) and not getattr(algo, "DICT_OBSERVATIONS", False):
        takes = [n for n, m in ALGORITHMS.items() if getattr(m, "DICT_OBSERVATIONS", False)]
        return f"{name} takes flat observations only; dict observations work with {', '.join(takes)}"
    return None


def check_networks(agent: Any, env: Env) -> None:
    """Raises a one-line :class:`ConfigError` unless every network section of ``agent`` fits ``env``'s
    observations: ``obs_key`` names an entry of dict observations (and is null for a flat one), and ``conv``
    layers see ``[height, width, channels]`` images large enough for them; a policy on discrete actions keeps
    the default (unused) box distribution."""
    keys = env.observation_shape if isinstance(env.observation_shape, dict) else None
    for f in dataclasses.fields(agent):
        section = getattr(agent, f.name)
        if not isinstance(section, Net):
            continue
        if (
            isinstance(section, PolicyNet)
            and env.action_space.kind == "discrete"
            and section.distribution != "gaussian"
        ):
            raise ConfigError(  # it was accepted and a categorical policy trained
                f"agent.{f.name}.distribution: {env.name} has discrete actions, which take a categorical policy; "
                f"{section.distribution} is for box actions (leave it gaussian, the default)"
            )
        name = f"agent.{f.name}.obs_key"
        if keys is None and section.obs_key is not None:
            raise ConfigError(f"{name}: {env.name} has flat observations; got {section.obs_key!r} (leave it null)")
        if keys is not None and section.obs_key not in keys:
            raise ConfigError(
                f"{name}: one of {', '.join(keys)} ({env.name} has dict observations); got {section.obs_key!r}"
            )
        if not section.conv:
            continue
        shape = tuple(network_input(section, env.observation_shape))
        if len(shape) != 3:
            raise ConfigError(
                f"agent.{f.name}.conv: needs image observations [height, width, channels]; {env.name} gives shape "
                f"{list(shape)} (leave conv empty)"
            )
        height, width, _ = conv_output_shape(section, shape)
        if height < 1 or width < 1:
            raise ConfigError(
                f"agent.{f.name}.conv_kernel: {section.conv_kernel} (stride {section.conv_stride}) leaves no pixels of "
                f"{env.name}'s {shape[0]}x{shape[1]} images after {len(section.conv)} conv layers; use a smaller kernel "
                "or fewer layers"
            )
