"""Orbax checkpoints of the whole train state, one per saved chunk, under ``RUN_DIR/checkpoints/<chunks_done>``."""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves (asynchronously) and restores ``{"state": train state, "meta": JSON}``; keeps the last ``keep``."""

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def save(self, chunks_done: int, state: Any, meta: dict) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(chunks_done, args=args)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, chunks_done: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores into the shapes/dtypes of ``abstract_state`` (e.g. from ``jax.eval_shape``)."""
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(chunks_done, args=args)
        return restored["state"], restored["meta"]

    def path(self, chunks_done: int) -> str:
        return os.path.join(self.directory, str(chunks_done))

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
