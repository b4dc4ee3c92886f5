"""Seconds to make an env (``rlx.envs.make``) in a fresh process, imports excluded: what a run pays before its
config can be checked and its programs traced. Each env in its own subprocess (nothing cached in memory), the
persistent compilation cache off, ``--rounds`` interleaved rounds.

    python scripts/bench_env_make.py 'brax/ant?backend=mjx' 'brax/hopper?backend=positional' --rounds 2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

CHILD = """
import sys, time
import brax.envs  # noqa: F401  (heavy imports before the clock starts)
from rlx.envs import make
tic = time.perf_counter()
env = make(sys.argv[1])
print(f"{time.perf_counter() - tic:.3f} {env.observation_shape}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="+", help="env specs, e.g. 'brax/ant?backend=mjx'")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = {**os.environ, "RLX_NO_COMPILE_CACHE": "1", "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    seconds: dict[str, list[str]] = {spec: [] for spec in args.envs}
    for _ in range(args.rounds):
        for spec in args.envs:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, spec], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            seconds[spec].append(out[0])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| env | seconds to make (per round) |\n|---|---:|")
    for spec, values in seconds.items():
        print(f"| `{spec}` | {' / '.join(f'{float(v):.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
