"""A/B: the driver's chunk with and without the per-iteration ``lax.cond`` that idles past a short last chunk.

``Experiment.chunk_fn`` builds the branch only when the plan has a short last chunk. Two experiments with the
same config and chunk length differ only there: one whose iteration count is a multiple of the chunk length
(no branch) and one with one iteration fewer (branch). Both run full chunks (``num_active`` = chunk length),
interleaved call by call in one process; env steps per second of each, fastest of ``--repeats`` calls:

    python scripts/bench/chunk_branch.py --env 'brax/inverted_pendulum?backend=positional' \\
        --config configs/ppo_inverted_pendulum.yaml --config configs/sac_inverted_pendulum.yaml
"""

from __future__ import annotations

import argparse

import jax
import rlx_side
from profile_rlx import time_interleaved

from rlx import driver
from rlx.config import to_dict


def experiment(config: driver.RunConfig, iterations: int, chunks: int, short_last_chunk: bool) -> driver.Experiment:
    """``chunks`` chunks of ``iterations`` iterations, the last one iteration short if ``short_last_chunk``."""
    steps_per_iteration = rlx_side.env_steps_per_iteration(config)
    total = (iterations * chunks - short_last_chunk) * steps_per_iteration
    built = driver.Experiment(driver.build_config({**to_dict(config), "num_chunks": chunks, "total_env_steps": total}))
    assert built.plan.iterations_per_chunk == iterations, built.plan
    return built


def measure(config: driver.RunConfig, iterations: int, repeats: int) -> dict[str, float]:
    """Env steps per second of a full chunk, without and with the branch."""
    runs = {}
    for name, short in (("no branch", False), ("branch", True)):
        exp = experiment(config, iterations, repeats + 2, short)
        carried = {"state": jax.block_until_ready(exp.run_chunk(exp.init(), 0)[0])}  # compiles

        def call(exp=exp, carried=carried):  # run_chunk donates its input: each call continues from the last
            carried["state"] = jax.block_until_ready(exp.run_chunk(carried["state"], 0)[0])

        runs[name] = call
    seconds = time_interleaved(runs, repeats)
    steps = iterations * rlx_side.env_steps_per_iteration(config)
    return {name: steps / s for name, s in seconds.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/inverted_pendulum?backend=positional")
    p.add_argument("--config", action="append", help="presets to measure: names or YAML paths (repeatable)")
    p.add_argument("--agent", action="append", default=[], metavar="KEY=VALUE", help="override an agent field")
    p.add_argument("--iterations", type=int, default=20, help="iterations per chunk")
    p.add_argument("--repeats", type=int, default=7, help="timed calls of each variant")
    args = p.parse_args()
    overrides = rlx_side.agent_overrides(args.agent)
    print(
        f"# chunk with vs without the per-iteration branch: `{args.env}`, {args.iterations} iterations per "
        f"chunk, fastest of {args.repeats} calls; jax {jax.__version__} on {jax.devices()[0].device_kind}; "
        f"rlx checkout {rlx_side.git_state()}\n"
    )
    print("| config | num_envs | no branch (env steps/s) | branch (env steps/s) | no branch / branch |")
    print("|---|---:|---:|---:|---:|")
    for path in args.config or ["configs/ppo_inverted_pendulum.yaml"]:
        data = rlx_side.load_preset(path)
        config = rlx_side.run_config(data, args.env, overrides)
        if hasattr(config.agent, "learning_starts"):  # every iteration does its gradient steps
            config = rlx_side.run_config(data, args.env, {**overrides, "learning_starts": 0})
        rates = measure(config, args.iterations, args.repeats)
        print(
            f"| {path} | {config.agent.num_envs} | {rates['no branch']:,.0f} | {rates['branch']:,.0f} | "
            f"{rates['no branch'] / rates['branch']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
