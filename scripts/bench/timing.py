"""The timing convention both sides share (plain Python: imported in the rlx and the brax venv).

In throughput mode ``run.py`` runs rlx (in its process), rlx in the brax venv and brax.training (worker
processes) in lockstep: one chunk/epoch of each in turn, each worker waiting at ``gate`` meanwhile, so
that every round compares the three under the same machine conditions (the benchmark machine may be
shared, and its speed drifts by tens of percent over minutes).

Training runs in chunks (rlx ``run_chunk`` calls) or epochs (brax ``training_epoch`` calls) of equal
size. The first ``WARMUP`` of them are not timed: they trace and compile. Two, because brax.training
0.14.2 PPO on jax 0.9.2 compiles its ``pmap``-ed training epoch twice: the first call gets the training
state with the sharding ``jax.device_put_replicated`` gave it, later calls the output sharding of
``pmap``, and the mismatch is a cache miss (seen with ``JAX_LOG_COMPILES=1``). (brax SAC's first epoch
already gets the output of its ``pmap``-ed prefill, and rlx compiles once, ahead of time: their second
chunk/epoch is a plain run.)
"""

from __future__ import annotations

import statistics
import sys

WARMUP = 2


def summarize(steps: list[int], seconds: list[float]) -> dict:
    """Steady-state rate and compile estimate from per-chunk env steps and wall seconds.

    ``steps_per_second``: the median over timed chunks of steps / seconds (the median, because the
    benchmark machine may be shared); ``compile_seconds``: the warm-up chunks' seconds minus what their
    steps take at that rate. None where there are no timed chunks."""
    if len(seconds) <= WARMUP:
        return {"steps_per_second": None, "compile_seconds": None, "chunk_seconds": seconds}
    rate = statistics.median(s / t for s, t in zip(steps[WARMUP:], seconds[WARMUP:]))
    warm = sum(seconds[:WARMUP]) - sum(steps[:WARMUP]) / rate
    return {"steps_per_second": rate, "compile_seconds": warm, "chunk_seconds": seconds}


def gate(lockstep: bool) -> None:
    """In lockstep mode, tells ``run.py`` this worker is between chunks/epochs and waits for its go (a line
    on stdin), so that the workers' timed chunks take turns instead of sharing the CPU."""
    if lockstep:
        print("BENCH_READY", flush=True)
        sys.stdin.readline()


def versions() -> dict:
    """Versions and device of the side that calls it (the rlx or the brax venv)."""
    from importlib.metadata import version

    import jax

    return {
        "jax": jax.__version__,
        "jaxlib": version("jaxlib"),
        "brax": version("brax"),
        "mujoco-mjx": version("mujoco-mjx"),
        "flax": version("flax"),
        "optax": version("optax"),
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
    }
