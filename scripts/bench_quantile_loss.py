"""Cost of the quantile Huber loss's value and gradient: rlx's hand-written gradient
(``rlx.ops.distributional.quantile_huber_loss``) against autodiff of the same loss written in plain jnp, at
QR-DQN's, IQN's and a quantile SAC critic's sizes. Compile excluded, best of ``--repeats`` of ``--iterations``
calls in one ``lax.scan``; also checks that both give the same gradient.

    python scripts/bench_quantile_loss.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx.ops.distributional import quantile_huber_loss, quantile_midpoints

# name: (batch, quantiles N, target samples M)
SIZES = {
    "QR-DQN CartPole (batch 128, 50 x 50)": (128, 50, 50),
    "IQN CartPole (batch 128, 8 x 8)": (128, 8, 8),
    "SAC quantile critics (2 x batch 256, 51 x 51)": (512, 51, 51),
    "QR-DQN Atari (batch 32, 200 x 200)": (32, 200, 200),
}


def autodiff_loss(quantiles, targets, fractions, kappa=1.0):
    u = jax.lax.stop_gradient(targets)[..., None, :] - quantiles[..., :, None]
    huber = jnp.where(jnp.abs(u) <= kappa, 0.5 * u**2, kappa * (jnp.abs(u) - 0.5 * kappa))
    return jnp.sum(jnp.mean(jnp.abs(fractions[..., :, None] - (u < 0)) * huber / kappa, axis=-1), axis=-1)


def timed(loss, quantiles, targets, fractions, iterations, repeats):
    value_and_grad = jax.value_and_grad(lambda q, t: jnp.mean(loss(q, t, fractions)))

    @jax.jit
    def run(q, t):
        def body(q, _):
            value, grad = value_and_grad(q, t)
            return q - 1e-3 * grad, value

        return jax.lax.scan(body, q, None, length=iterations)

    jax.block_until_ready(run(quantiles, targets))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(quantiles, targets))
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e3, jax.grad(lambda q: jnp.mean(loss(q, targets, fractions)))(quantiles)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {platform.processor() or platform.machine()}, {jax.devices()[0].platform}")
    print("| loss, sizes | autodiff | hand-written gradient | speed-up |\n|---|---:|---:|---:|")
    for name, (batch, n, m) in SIZES.items():
        keys = jax.random.split(jax.random.PRNGKey(0), 2)
        quantiles, targets = jax.random.normal(keys[0], (batch, n)), jax.random.normal(keys[1], (batch, m))
        fractions = quantile_midpoints(n)
        ours, grad = timed(quantile_huber_loss, quantiles, targets, fractions, args.iterations, args.repeats)
        plain, want = timed(autodiff_loss, quantiles, targets, fractions, args.iterations, args.repeats)
        np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)
        print(f"| {name} | {plain:.3f} ms | {ours:.3f} ms | {plain / ours:.1f}x |")


if __name__ == "__main__":
    main()
