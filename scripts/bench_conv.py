"""Cost of one DQN training iteration on MinAtar (16 env steps into the buffer plus one gradient step on a batch
of 128 every 8 transitions, as ``dqn_minatar``) for MinAtar's network with rlx's conv layer
(``rlx.nets.layers.Conv``: one matrix product of the shifted views), the same network with ``flax.linen.Conv``
(``lax.conv_general_dilated``), and the flattened image through a 256-256 MLP: ``lax.scan`` over ``--iterations``
train steps, compile excluded, best of ``--repeats``.

    python scripts/bench_conv.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import flax.linen as nn
import jax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_quantile_cost import time_iterations  # this script's folder is on sys.path

from rlx.algos import dqn
from rlx.envs import make
from rlx.nets import QNet, mlp
from rlx.nets.layers import Conv

LOOP = {"num_envs": 16, "utd_ratio": 0.125, "batch_size": 128, "buffer_size": 20_000, "learning_starts": 1_000}


class FlaxConv(Conv):
    """:class:`rlx.nets.layers.Conv`'s fields and parameters on ``flax.linen.Conv`` (VALID padding)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = (self.kernel_size, self.kernel_size)
        return nn.Conv(self.features, kernel, self.stride, "VALID", kernel_init=self.kernel_init, name="conv")(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gymnax/Breakout-MinAtar")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = make(args.env)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {args.env}")
    minatar = dqn.Config(q=QNet(conv=(16,), hidden=(128,), dueling=True, value="huber"), n_step=3, **LOOP)
    flat = dqn.Config(q=QNet(hidden=(256, 256), dueling=True, value="huber"), n_step=3, **LOOP)
    rows = [("conv 16 + 128, rlx Conv", minatar, mlp.Conv), ("conv 16 + 128, flax.linen.Conv", minatar, FlaxConv)]
    rows.append(("flattened, 256-256 MLP", flat, mlp.Conv))
    base = None
    for name, config, layer in rows:
        original, mlp.Conv = mlp.Conv, layer
        try:
            seconds = time_iterations(dqn, config, env, args.iterations, args.repeats)
        finally:
            mlp.Conv = original
        base = base or seconds
        print(f"| {name} | {seconds * 1e3:.3f} ms | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
