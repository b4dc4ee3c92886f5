"""Cost of mish: ``jax.nn.mish`` (``x tanh(softplus(x))``, softplus through ``log1p``) against rlx's one-exponential
``rlx.nets.layers.mish``, alone on a ``[rows, width]`` array (forward, and forward with its gradient) and inside the
consistency actor-critic presets' training iterations (``lax.scan`` over ``--iterations`` train steps after a scan that
compiles and fills the buffer past ``learning_starts``, set to one batch; best of ``--repeats``). The preset's networks and
the consistency network's time embedding use whichever mish is swapped in.

    python scripts/bench_mish.py --preset consistency_ac_inverted_pendulum --preset consistency_ac_pendulum
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_quantile_cost import preset_iterations_row

from rlx.nets import consistency, layers

IMPLEMENTATIONS = {"jax.nn.mish": jax.nn.mish, "rlx mish": layers.mish}


def use(mish) -> None:
    """Every network built after this call uses ``mish`` for ``activation: mish`` and the time embedding."""
    layers.ACTIVATIONS["mish"] = mish
    consistency.mish = mish


def best_seconds(fn, x: jax.Array, repeats: int, calls: int = 50) -> float:
    jax.block_until_ready(fn(x))
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(calls):
            out = fn(x)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - tic) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_800)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--preset", action="append", default=[], help="a consistency AC preset (repeatable)")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}")
    x = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (args.rows, args.width))
    print(f"| [{args.rows}, {args.width}] | forward us | forward + gradient us |")
    print("|---|---:|---:|")
    for name, mish in IMPLEMENTATIONS.items():
        forward = jax.jit(mish)
        with_grad = jax.jit(jax.value_and_grad(lambda v, f=mish: jnp.sum(f(v))))
        cells = [1e6 * best_seconds(f, x, args.repeats) for f in (forward, with_grad)]
        print(f"| {name} | {cells[0]:.1f} | {cells[1]:.1f} |", flush=True)
    installs = {name: lambda mish=mish: use(mish) for name, mish in IMPLEMENTATIONS.items()}
    for preset in args.preset:
        print(preset_iterations_row(preset, installs, args.iterations, args.repeats), flush=True)
    use(layers.mish)


if __name__ == "__main__":
    main()
