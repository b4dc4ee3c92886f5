"""Helpers shared by the test modules."""

import os

import jax
import numpy as np
import yaml

from rlx import driver

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


def preset(name, **overrides):
    """The RunConfig of ``configs/<name>`` with top-level fields replaced by ``overrides``."""
    with open(os.path.join(CONFIGS, name)) as f:
        data = yaml.safe_load(f)
    data.update(overrides)
    return driver.build_config(data)


def tree_equal(a, b):
    """Bitwise equality of two pytrees with the same structure."""
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def subprocess_env(cache_dir):
    """Environment for ``python -m rlx.cli`` subprocesses sharing a persistent JAX compilation cache."""
    return {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache_dir),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PLATFORMS": "cpu",
    }
