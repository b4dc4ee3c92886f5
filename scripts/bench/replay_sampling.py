"""Cost of drawing a batch from the replay buffer: uniform (``ReplayBuffer.sample``) against prioritized
(``PrioritizedReplayBuffer.sample_prioritized`` followed by ``set_priorities`` of the drawn positions, the work a
prioritized gradient step adds), for full buffers of several sizes. Each is a jitted ``lax.scan`` of ``--draws``
draws whose result depends on every drawn item (so XLA drops nothing); the priorities change at every draw, as
in training (unchanged ones would let XLA hoist their sums out of the loop). Milliseconds per draw, the fastest of
``--repeats`` interleaved calls.

    python scripts/bench/replay_sampling.py            # 10k/128, 100k/256, 1M/256 (1 env), 1M/256 (1,000 envs, n=3)
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
from profile_rlx import compile_program, time_interleaved

from rlx.buffers import PrioritizedReplayBuffer, ReplayBuffer

CASES = [  # capacity, envs, batch, sequence length
    (10_000, 10, 128, 1),
    (100_000, 10, 256, 1),
    (1_000_000, 1, 256, 1),
    (1_000_000, 1_000, 256, 3),
]


def programs(capacity: int, envs: int, batch: int, length: int, draws: int) -> dict:
    """No-argument calls timing ``draws`` uniform and prioritized draws from a full buffer of 17-float items."""
    calls = {}
    for kind in (ReplayBuffer, PrioritizedReplayBuffer):
        buffer = kind(capacity, batch, envs, length)
        state = buffer.init({"obs": jnp.zeros(17)})
        state = buffer.add_steps(state, {"obs": jnp.ones((capacity // envs, envs, 17))})

        if kind is ReplayBuffer:

            def draw(carry, key, buffer=buffer):
                state, total = carry
                return (state, total + jnp.sum(buffer.sample(state, key)["obs"])), None

        else:

            def draw(carry, key, buffer=buffer):
                state, total = carry
                drawn = buffer.sample_prioritized(state, key)
                seen = jnp.sum(drawn.items["obs"]) + jnp.sum(drawn.probability)
                new = 0.5 + jax.random.uniform(key, drawn.probability.shape)
                return (buffer.set_priorities(state, drawn.index, new), total + seen), None

        def run(state, key, draw=draw):
            return jax.lax.scan(draw, (state, jnp.float32(0)), jax.random.split(key, draws))[0][1]

        calls[kind.__name__], _ = compile_program(run, (state, jax.random.key(0)))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for capacity, envs, batch, length in CASES:
        seconds = time_interleaved(programs(capacity, envs, batch, length, args.draws), args.repeats)
        uniform, prioritized = (seconds[k] / args.draws * 1e3 for k in ("ReplayBuffer", "PrioritizedReplayBuffer"))
        rows.append(
            {
                "capacity": capacity,
                "envs": envs,
                "batch": batch,
                "sequence_length": length,
                "uniform_ms": round(uniform, 3),
                "prioritized_ms": round(prioritized, 3),
                "ratio": round(prioritized / uniform, 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
