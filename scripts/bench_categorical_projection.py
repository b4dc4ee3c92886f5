"""Cost of C51's categorical projection: the ``[batch, K, K]`` hat-weight einsum rlx used until 2026-12-04 against
``rlx.ops.distributional.categorical_projection``'s two scatter-adds (``O(batch K)``), alone on ``[batch, K]`` targets
(best of ``--repeats`` scans of 200 calls; the largest difference between the two is printed beside the times) and
inside presets' training iterations (``lax.scan`` over ``--iterations`` train steps after a scan that compiles and
fills the buffer past ``learning_starts``, set to one batch; best of ``--repeats``).

    python scripts/bench_categorical_projection.py --preset fasttd3_inverted_pendulum --preset simbav2_pendulum
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

from rlx.ops import distributional, values


def hat_weight_projection(next_probs, atoms, returns, discount):
    """The projection as rlx computed it before: every source atom's hat weight on every target atom."""
    v_min, v_max = atoms[0], atoms[-1]
    delta = (v_max - v_min) / (atoms.shape[0] - 1)
    target = jnp.clip(returns[:, None] + discount[:, None] * atoms[None, :], v_min, v_max)
    position = (target - v_min) / delta
    index = jnp.arange(atoms.shape[0], dtype=position.dtype)
    weight = jnp.clip(1.0 - jnp.abs(position[:, :, None] - index[None, None, :]), 0.0, 1.0)
    return jnp.einsum("bj,bji->bi", next_probs, weight)


IMPLEMENTATIONS = {"hat weights": hat_weight_projection, "scatter-add": distributional.categorical_projection}
SHAPES = [(256, 51), (512, 101), (2048, 101), (8192, 101)]  # batch x critics: SimbaV2 2 x 256, FastTD3 2 x 1024 ...


def time_alone(projection, batch: int, num_atoms: int, repeats: int, calls: int = 200) -> tuple[float, jax.Array]:
    keys = jax.random.split(jax.random.PRNGKey(batch), 3)
    atoms = distributional.support(-10.0, 110.0, num_atoms)
    probs = jax.nn.softmax(3.0 * jax.random.normal(keys[0], (batch, num_atoms)))
    returns = jax.random.uniform(keys[1], (batch,), minval=-20.0, maxval=20.0)
    discount = jnp.where(jax.random.uniform(keys[2], (batch,)) < 0.1, 0.0, 0.99)

    def body(carry, _):  # the carry feeds each call's inputs so XLA cannot hoist the projection out of the loop
        out = projection(probs, atoms, returns + carry, discount)
        return carry + 1e-9 * out[0, 0], None

    run = jax.jit(lambda: jax.lax.scan(body, 0.0, None, length=calls)[0])
    jax.block_until_ready(run())
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(run())
        best = min(best, (time.perf_counter() - tic) / calls)
    return best, jax.jit(projection)(probs, atoms, returns, discount)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", default=[], help="a preset with a C51 critic (repeatable)")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}")
    print("| [batch, K] | hat weights | scatter-add | speed-up | largest difference |")
    print("|---|---:|---:|---:|---:|")
    for batch, num_atoms in SHAPES:
        (dense, dense_out), (scatter, scatter_out) = (
            time_alone(f, batch, num_atoms, args.repeats) for f in IMPLEMENTATIONS.values()
        )
        difference = float(jnp.max(jnp.abs(dense_out - scatter_out)))
        print(
            f"| [{batch}, {num_atoms}] | {1e3 * dense:.3f} ms | {1e3 * scatter:.3f} ms | {dense / scatter:.1f}x "
            f"| {difference:.1e} |",
            flush=True,
        )

    def install(projection):
        return lambda: setattr(values, "categorical_projection", projection)  # what Categorical.target calls

    installs = {name: install(projection) for name, projection in IMPLEMENTATIONS.items()}
    for preset in args.preset:
        print(preset_iterations_row(preset, installs, args.iterations, args.repeats, digits=2), flush=True)
    values.categorical_projection = distributional.categorical_projection


if __name__ == "__main__":
    main()
