"""The run axis of a sweep over devices and processes: ``jax.sharding`` over all devices of all processes
(``jax.distributed``), padding to a multiple of the device count, and gathering results to the host."""

from __future__ import annotations

import sys
from typing import Any

import jax
import numpy as np

from rlx.config import ConfigError


class Placement:
    """The run axis sharded over ``devices`` (all devices of all processes by default)."""

    def __init__(self, num_runs: int, num_devices: int | None = None):
        devices = jax.devices()
        if num_devices is not None:
            if not 1 <= num_devices <= len(devices):
                raise ConfigError(
                    f"--devices (num_devices): must be between 1 and {len(devices)} (devices here), got {num_devices}"
                )
            devices = devices[:num_devices]
        self.devices = devices
        self.num_runs = num_runs
        self.padded = -(-num_runs // len(devices)) * len(devices)
        mesh = jax.sharding.Mesh(np.array(devices), ("runs",))
        self.sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
        self.replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def pad(self, array: np.ndarray) -> np.ndarray:
        """Repeats the last run to fill the padded run axis (padding runs are computed and dropped)."""
        extra = self.padded - array.shape[0]
        return np.concatenate([array, np.repeat(array[-1:], extra, axis=0)]) if extra else array

    def put(self, tree: Any) -> Any:
        """Host arrays with a leading run axis -> global arrays sharded over the devices."""

        def place(x):
            x = self.pad(np.asarray(x))
            return jax.make_array_from_callback(x.shape, self.sharding, lambda index: x[index])

        return jax.tree.map(place, tree)

    def get(self, tree: Any) -> Any:
        """Global arrays -> host NumPy arrays of the real runs (gathered from all processes)."""
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(lambda x: np.asarray(x)[: self.num_runs], jax.device_get(tree))


def init_distributed(
    coordinator: str | None, num_processes: int | None, process_id: int | None, join: bool = True
) -> None:
    """Joins a multi-process job (``jax.distributed``); must run before anything else touches JAX. ``join``
    False: only checks the three settings (a dry run), without waiting for the other processes."""
    if coordinator is None and num_processes is None and process_id is None:
        return
    if coordinator is None or num_processes is None or process_id is None:
        raise ConfigError("--coordinator, --num-processes and --process-id: give all three (or none)")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id: must be in [0, {num_processes}), got {process_id}")
    if not join:
        return
    if num_processes > 1:  # initialize blocks until every process has joined
        print(f"rlx: process {process_id} joining {num_processes} processes at {coordinator}", file=sys.stderr)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices of different processes use TCP
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
