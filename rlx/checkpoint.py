"""Orbax checkpoints of the whole train state, one per saved chunk, under ``RUN_DIR/checkpoints/<chunks_done>``.

Each checkpoint stores the state and a JSON ``meta`` that includes a SHA-256 of every leaf's bytes, shape
and dtype. Restoring recomputes it, so a truncated, garbled or half-written checkpoint is detected
instead of being loaded silently; :meth:`Checkpointer.restore_latest_valid` then falls back to the newest
checkpoint that restores and verifies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import traceback
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rlx.config import ConfigError


class CorruptCheckpointError(RuntimeError):
    """A checkpoint could not be restored or does not match its checksum."""


def state_digest(state: Any) -> str:
    """SHA-256 over the bytes, shapes and dtypes of all leaves of a (host or device) pytree."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(jax.device_get(state)):
        array = np.ascontiguousarray(leaf)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def shape_mismatch(tree: Any, abstract: Any) -> str | None:
    """Where ``tree`` differs from ``abstract`` (arrays or ``jax.ShapeDtypeStruct``s of the same structure) in
    a leaf's shape or dtype, as ``".path: float32[4] vs float32[8]"`` (``tree``'s first), or None when none does."""
    for (where, want), got in zip(jax.tree_util.tree_leaves_with_path(abstract), jax.tree.leaves(tree), strict=True):
        got_type, want_type = _shape_dtype(got), _shape_dtype(want)
        if got_type != want_type:
            return f"{jax.tree_util.keystr(where)}: {got_type} vs {want_type}"
    return None


def _shape_dtype(leaf: Any) -> str:
    return f"{jnp.result_type(leaf)}{list(jnp.shape(leaf))}"  # JAX's dtype: what jit would make of the leaf


def _is_empty(leaf: Any) -> bool:
    return int(np.prod(leaf.shape)) == 0


def _quiet_closed_loop_noise() -> None:
    """When a restore fails, tensorstore still finishes the reads Orbax had started and calls back into the
    event loop Orbax ran them on, which Orbax has closed by then (some before the error reaches rlx): each
    callback raises an unraisable ``RuntimeError: Event loop is closed`` from ``call_soon_threadsafe``, about
    a hundred tracebacks around rlx's one-line warning. rlx reports the failure itself, so exactly those are
    dropped; any other unraisable exception reaches the hook that was there before."""
    previous = sys.unraisablehook
    if getattr(previous, "rlx_quiets_closed_loops", False):
        return

    def hook(unraisable: Any) -> None:
        error, frames = unraisable.exc_value, traceback.extract_tb(unraisable.exc_traceback)
        closed_loop = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        if not (closed_loop and frames and frames[0].name == "call_soon_threadsafe"):
            previous(unraisable)

    hook.rlx_quiets_closed_loops = True
    sys.unraisablehook = hook


# Checkpoints a restore was attempted from: the asyncio filter below drops unretrieved task errors about them.
_RESTORING: set[str] = set()


class _UnretrievedReadErrors(logging.Filter):
    """When a restore fails, Orbax's other read tasks of that checkpoint fail too, and asyncio logs each one it
    garbage-collects without its exception retrieved ("Task exception was never retrieved" and a traceback; 0-2
    per failed restore, by timing). rlx reports the failure itself, so records whose exception names a
    checkpoint being restored are dropped; any other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Task exception was never retrieved") or not record.exc_info:
            return True
        error = str(record.exc_info[1])
        return not any(f'"{path}{os.sep}' in error for path in _RESTORING)


def _quiet_unretrieved_read_errors(path: str) -> None:
    _RESTORING.update((os.path.abspath(path), os.path.realpath(path)))  # as Orbax names it, links resolved or not
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _UnretrievedReadErrors) for f in logger.filters):
        logger.addFilter(_UnretrievedReadErrors())


class _UnfinalizedTmpNotice(logging.Filter):
    """A process killed while writing a checkpoint leaves ``N.orbax-checkpoint-tmp``; the next save of chunk N
    removes it (it was never a checkpoint: the run resumed from an earlier one) and Orbax says so in a raw absl
    warning line. That record is dropped; any other passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Attempted to create temporary directory") and "not finalized" in message)


def _quiet_unfinalized_tmp_notice() -> None:
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _UnfinalizedTmpNotice) for f in logger.filters):
        logger.addFilter(_UnfinalizedTmpNotice())


def _without_empty(state: Any) -> Any:
    """Orbax cannot write zero-size arrays (MJX's ``data.act`` in envs without activation states): each is
    stored as a scalar of its dtype and rebuilt from the abstract state on restore (it holds no data)."""
    return jax.tree.map(lambda x: np.zeros((), x.dtype) if _is_empty(x) else x, state)


class Checkpointer:
    """Saves (asynchronously) and restores ``{"state": train state, "meta": JSON}``; keeps the last ``keep``."""

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        # Host-side (NumPy) states are written by the process that holds them. In a multi-process job
        # (jax.distributed) orbax would otherwise synchronise every save with all processes and let only
        # process 0 write, so each manager is made private to the calling process.
        process = (
            ocp.options.MultiprocessingOptions(
                primary_host=jax.process_index(),
                active_processes={jax.process_index()},
                barrier_sync_key_prefix=f"rlx{jax.process_index()}",
            )
            if jax.process_count() > 1
            else ocp.options.MultiprocessingOptions()
        )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=False, enable_async_checkpointing=True, multiprocessing_options=process
        )
        handlers = {
            "state": ocp.StandardCheckpointHandler(multiprocessing_options=process),
            "meta": ocp.JsonCheckpointHandler(multiprocessing_options=process),
        }
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        _quiet_unfinalized_tmp_notice()

    def save(self, chunks_done: int, state: Any, meta: dict) -> None:
        host_state = jax.device_get(state)  # one copy serves the checksum and the asynchronous write
        meta = {**meta, "state_sha256": state_digest(host_state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(_without_empty(host_state)), meta=ocp.args.JsonSave(meta))
        self._manager.save(chunks_done, args=args)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, chunks_done: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores into the shapes/dtypes of ``abstract_state`` (e.g. from ``jax.eval_shape``) and verifies
        the checksum; raises :class:`CorruptCheckpointError` naming the directory if anything is wrong."""
        path = self.path(chunks_done)
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _without_empty(abstract_state))
        _quiet_closed_loop_noise()
        _quiet_unretrieved_read_errors(path)
        try:
            target, rebuild = self._without_fields_it_predates(chunks_done, target)
            args = ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
            restored = self._manager.restore(chunks_done, args=args)
            meta = restored["meta"]
            state = jax.tree.map(
                lambda x, a: np.zeros(a.shape, a.dtype) if _is_empty(a) else x,
                rebuild(restored["state"]),
                abstract_state,
            )
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise CorruptCheckpointError(
                f"checkpoint {path} cannot be restored ({type(e).__name__}: {first})"
            ) from None
        if not isinstance(meta, dict) or "chunks_done" not in meta:
            raise CorruptCheckpointError(f"checkpoint {path} has unreadable metadata")
        # Orbax restores each array with the shape it was saved with, whatever the target's: a state of other
        # shapes would pass the checksum (it is the saved state) and fail later, inside the network.
        mismatch = shape_mismatch(state, abstract_state)
        if mismatch is not None:
            raise CorruptCheckpointError(f"checkpoint {path} holds {mismatch} (the checkpoint's vs this config's)")
        expected = meta.get("state_sha256")
        if expected is None:
            print(
                f"rlx: warning: checkpoint {path} has no checksum (written before checksums were added); not verified",
                file=sys.stderr,
            )
        elif state_digest(state) != expected:
            raise CorruptCheckpointError(f"checkpoint {path} does not match the checksum saved with it")
        return state, meta

    def _without_fields_it_predates(self, chunks_done: int, target: Any) -> tuple[Any, Any]:
        """``target`` and the identity, or, when the checkpoint lacks fields that ``target`` holds as None (a
        state field added since, None where unused, such as an actor-critic's ``total_iterations`` without a
        schedule), the target as Orbax's nested dict without them and a function that puts them back as None
        into a restored dict and rebuilds the state's types. A None holds no data, so nothing is guessed."""
        try:
            on_disk = self._manager.item_metadata(chunks_done)["state"].tree
        except Exception:  # no tree metadata to compare with: restore as before, and let Orbax report what is wrong
            return target, lambda restored: restored
        serialized = ocp.tree.serialize_tree(target, keep_empty_nodes=True)
        dropped: list[tuple[str, ...]] = []

        def prune(node: Any, saved: Any, where: tuple[str, ...]) -> Any:
            if not isinstance(node, dict) or not isinstance(saved, dict):
                return node
            kept = {}
            for name, child in node.items():
                if child is None and name not in saved:
                    dropped.append((*where, name))
                else:
                    kept[name] = prune(child, saved.get(name), (*where, name))
            return kept

        pruned = prune(serialized, on_disk, ())
        if not dropped:
            return target, lambda restored: restored

        def rebuild(restored: dict) -> Any:
            for where in dropped:
                node = restored
                for name in where[:-1]:
                    node = node[name]
                node[where[-1]] = None
            return ocp.tree.deserialize_tree(restored, target, keep_empty_nodes=True)

        return pruned, rebuild

    def restore_latest_valid(self, abstract_state: Any) -> tuple[Any, dict] | None:
        """The newest checkpoint that restores and verifies, warning on stderr about each one skipped.
        None if there are no checkpoints; a ConfigError if there are some but none is valid."""
        steps = self.all_steps()
        for step in reversed(steps):
            try:
                return self.restore(step, abstract_state)
            except CorruptCheckpointError as e:
                print(f"rlx: warning: {e}; trying an older checkpoint", file=sys.stderr)
        if steps:
            raise ConfigError(f"no valid checkpoint in {self.directory} (all {len(steps)} are damaged)")
        return None

    def read_meta(self, chunks_done: int) -> dict | None:
        """The JSON metadata saved with a checkpoint (without restoring its state); None if unreadable."""
        try:
            meta = self._manager.restore(chunks_done, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception:
            return None
        return meta if isinstance(meta, dict) else None

    def path(self, chunks_done: int) -> str:
        return os.path.join(self.directory, str(chunks_done))

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
