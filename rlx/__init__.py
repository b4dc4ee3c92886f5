"""rlx: JAX-native, vectorized reinforcement learning.

The submodules load on first use, so ``import rlx`` stays cheap and ``rlx.driver``, ``rlx.sweep``,
``rlx.inference``, ``rlx.stats``, ``rlx.plot``... work without importing each first:

- ``rlx.driver``: ``build_config``, ``train``, ``resume``, ``Experiment`` (compiled init/chunk/eval);
- ``rlx.sweep``: ``spec_from_dict``, ``expand``, ``run`` (vmapped seeds x settings), population-based training;
- ``rlx.inference``: trained policies (``from_run``, ``load``, ``save``, ``evaluate``);
- ``rlx.stats`` (IQM, bootstrap CIs, probability of improvement), ``rlx.compare`` (sweeps side by side),
  ``rlx.plot``, ``rlx.presets``, ``rlx.envs``, ``rlx.algos`` (the registry).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "algos",
    "buffers",
    "checkpoint",
    "cli",
    "compare",
    "compile_cache",
    "config",
    "driver",
    "envs",
    "evaluate",
    "host",
    "inference",
    "metrics_log",
    "nets",
    "ops",
    "plot",
    "presets",
    "repro",
    "rollout",
    "stats",
    "sweep",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"rlx.{name}")
    raise AttributeError(f"module 'rlx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
