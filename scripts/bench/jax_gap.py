"""Where jax 0.9.2's faster brax stepping on CPU comes from: the front end (jax's tracing and lowering to
StableHLO) or the back end (XLA:CPU compiling and running it). Never imports rlx, so it runs in either venv.

    python jax_gap.py export ENV BACKEND NUM_ENVS FILE     # serialize this jax's raw-stepping program
    python jax_gap.py time ENV BACKEND NUM_ENVS [FILE...]  # time this jax's own trace, then each FILE's
    python jax_gap.py hlo FILE                             # what this jax's XLA makes of FILE's program

The program is brax's raw stepping as ``run.py``'s raw column (``EpisodeWrapper(VmapWrapper(env))``, uniform
random actions, a 100-step ``lax.scan``) over the state's flat leaves, so a file exported by one jax
(``jax.export``, needs ``flatbuffers``) runs unchanged under another: the same StableHLO, compiled and run by
each venv's XLA. Steps/s: the median of 5 blocks of >= 0.6 s after two warm-up calls.
"""

from __future__ import annotations

import collections
import re
import statistics
import sys
import time

import jax
from brax import envs
from jax import export

SCAN_LENGTH = 100


def raw_program(name: str, backend: str, num_envs: int):
    """``(run, leaves)``: ``run(leaves, key) -> leaves`` steps the vmapped env ``SCAN_LENGTH`` times."""
    base = envs.get_environment(name, backend=backend)
    env = envs.training.EpisodeWrapper(envs.training.VmapWrapper(base), 1000, 1)
    state = jax.jit(env.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs))
    leaves, treedef = jax.tree_util.tree_flatten(state)

    def run(leaves, key):
        def body(carry, k):
            action = jax.random.uniform(k, (num_envs, base.action_size), minval=-1.0, maxval=1.0)
            return env.step(carry, action), None

        final, _ = jax.lax.scan(body, jax.tree_util.tree_unflatten(treedef, leaves), jax.random.split(key, SCAN_LENGTH))
        return jax.tree_util.tree_leaves(final)

    return run, leaves


def steps_per_second(call, leaves, num_envs: int) -> list[float]:
    for _ in range(2):  # compiles (the second call sees the program's own output arrays)
        leaves = jax.block_until_ready(call(leaves, jax.random.PRNGKey(1)))
    rates, calls = [], 0
    for _ in range(5):
        tic, n = time.perf_counter(), 0
        while time.perf_counter() - tic < 0.6 or n < 2:
            leaves = jax.block_until_ready(call(leaves, jax.random.PRNGKey(2 + calls)))
            calls, n = calls + 1, n + 1
        rates.append(num_envs * SCAN_LENGTH * n / (time.perf_counter() - tic))
    return rates


def load(path: str) -> export.Exported:
    with open(path, "rb") as f:
        return export.deserialize(bytearray(f.read()))


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "hlo":
        exported = load(args[0])
        avals = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.in_avals]
        call_args, call_kwargs = jax.tree_util.tree_unflatten(exported.in_tree, avals)
        text = jax.jit(exported.call).lower(*call_args, **call_kwargs).compile().as_text()
        ops = collections.Counter(re.findall(r"= \S+ (\w[\w-]*)\(", text))
        fusions = collections.Counter(re.findall(r"kind=(\w+)", text))
        print(
            f"jax {jax.__version__}: {text.count(chr(10))} lines of optimized HLO; fusions {dict(fusions)}; "
            f"ops {dict(ops.most_common(8))}"
        )
        return
    name, backend, num_envs = args[0], args[1], int(args[2])
    run, leaves = raw_program(name, backend, num_envs)
    if mode == "export":
        with open(args[3], "wb") as f:
            f.write(export.export(jax.jit(run))(leaves, jax.random.PRNGKey(1)).serialize())
        return
    for label, call in [("its own trace", jax.jit(run))] + [(p, jax.jit(load(p).call)) for p in args[3:]]:
        rates = steps_per_second(call, leaves, num_envs)
        print(
            f"jax {jax.__version__} {name}/{backend} {num_envs} envs, {label}: median {statistics.median(rates):,.0f} "
            f"steps/s (min {min(rates):,.0f}, max {max(rates):,.0f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
