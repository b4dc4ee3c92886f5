"""The persistent compilation cache: the CLI turns JAX's on by default, so a second run of the same config
(same program, shapes, jax version and XLA flags) loads its compiled programs instead of compiling again.

Directory: ``$RLX_COMPILE_CACHE_DIR``, else ``$JAX_COMPILATION_CACHE_DIR``, else
``$XDG_CACHE_HOME/rlx/jax`` (``~/.cache/rlx/jax``). Opt out with ``RLX_NO_COMPILE_CACHE=1`` or
``--no-compile-cache`` (both also keep JAX from using ``$JAX_COMPILATION_CACHE_DIR`` on its own); a directory that
cannot be made or written is a warning and no cache. Library users call :func:`enable` themselves. :func:`stats` counts the programs
that asked the cache and those it served (``summary.json``: ``compile_cache``).
"""

from __future__ import annotations

import os
import sys

DISABLE_ENV = "RLX_NO_COMPILE_CACHE"
DIR_ENV = "RLX_COMPILE_CACHE_DIR"

_counts = {"requests": 0, "hits": 0}
_listening = False
_directory: str | None = None


def default_dir() -> str:
    explicit = os.environ.get(DIR_ENV) or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rlx", "jax")


def disabled_by_env() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _count(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/compile_requests_use_cache":
        _counts["requests"] += 1
    elif event == "/jax/compilation_cache/cache_hits":
        _counts["hits"] += 1


def enable(directory: str | None = None) -> str | None:
    """Turns the persistent cache on (unless ``RLX_NO_COMPILE_CACHE`` is set) before anything compiles;
    every program is cached, however fast it compiled. Returns the directory, or None when disabled."""
    global _listening, _directory
    import jax  # here, so that importing rlx.cli stays light

    if disabled_by_env():
        disable()
        return None
    directory = directory or default_dir()
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError("not writable")
    except OSError as e:
        print(
            f"rlx: warning: compile cache directory {directory}: {getattr(e, 'strerror', None) or e}; running "
            f"without the cache (set {DIR_ENV} to a writable directory, or {DISABLE_ENV}=1)",
            file=sys.stderr,
        )
        disable()
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not _listening:
        jax.monitoring.register_event_listener(_count)
        _listening = True
    _directory = directory
    return directory


def disable() -> None:
    """Turns the persistent cache off, JAX's own included (it reads ``$JAX_COMPILATION_CACHE_DIR`` by itself)."""
    global _directory
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    _directory = None


def stats(since: dict | None = None) -> dict:
    """``{"dir", "requests", "hits"}`` since :func:`enable`, or since ``since`` (an earlier ``stats()``: a run's
    or a sweep group's own counts in a process that compiled others before); ``dir`` None when the cache is off."""
    if _directory is None:
        return {"dir": None, "requests": 0, "hits": 0}
    base = since if since is not None and since.get("dir") == _directory else {}
    return {"dir": _directory, **{k: n - base.get(k, 0) for k, n in _counts.items()}}
