"""Command line: ``rlx train <algo> --env suite/name [--config FILE] [--set key=value ...] ...`` and
``rlx eval RUN_DIR [--episodes N] [--render OUT.html]``.

Config precedence (later wins): the algorithm's defaults, ``--config`` YAML, ``--env/--seed/--steps``,
``--set``. Everything is validated before anything compiles; errors are one line on stderr and
exit status 2. A diverged run exits with status 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from rlx.config import ConfigError, load_yaml, merge, parse_assignment

EXIT_CONFIG_ERROR = 2
EXIT_DIVERGED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlx", description="JAX-native vectorized reinforcement learning")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an agent (or continue one with --resume)")
    train.add_argument("algo", nargs="?", help="algorithm: ppo, sac, td3 or dqn (A2C: ppo preset, DDPG: td3 preset, C51: dqn option; see configs/)")
    train.add_argument("--env", help="env as suite/name[?option=value&...], e.g. brax/ant?backend=mjx")
    train.add_argument("--config", help="YAML preset, e.g. configs/ppo_cartpole.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a field, e.g. agent.learning_rate=1e-3 (repeatable)")
    train.add_argument("--seed", type=int)
    train.add_argument("--steps", type=int, help="total env steps")
    train.add_argument("--out", help="run directory (default runs/<algo>-<env>-<time>)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--stop-after-chunks", type=int, metavar="N",
                       help="checkpoint and stop after N chunks (for preemptible jobs); continue with --resume")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = sub.add_parser("eval", help="evaluate a saved run's policy (newest valid checkpoint)")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--episodes", type=int, help="deterministic episodes (default: the run's eval_episodes)")
    evaluate.add_argument("--render", metavar="OUT.html", help="also write one rollout as an HTML page")
    evaluate.add_argument("--seed", type=int, default=0)
    return parser


def resolve_train_config(args: argparse.Namespace) -> dict:
    """Merges defaults, preset, flags and ``--set`` into plain data (validated by the driver)."""
    from rlx.envs import parse_env_spec

    data: dict = {}
    if args.config:
        data = load_yaml(args.config)
        preset_algo = data.get("algo")
        if args.algo and preset_algo and preset_algo != args.algo:
            raise ConfigError(f"--config {args.config}: is a preset for algo {preset_algo!r}, not {args.algo!r}")
    if args.algo:
        data["algo"] = args.algo
    if args.env:
        data = merge(data, {"env": parse_env_spec(args.env)})
        if "?" not in args.env:  # a new env drops the preset's env options
            data["env"] = {"name": data["env"]["name"]}
    if args.seed is not None:
        data["seed"] = args.seed
    if args.steps is not None:
        data["total_env_steps"] = args.steps
    for assignment in args.set:
        data = merge(data, parse_assignment(assignment))
    return data


def _train(args: argparse.Namespace) -> int:
    from rlx import driver

    progress = not args.quiet
    if args.resume:
        extra = [flag for flag, value in (("algo", args.algo), ("--env", args.env), ("--config", args.config),
                 ("--seed", args.seed), ("--steps", args.steps), ("--out", args.out)) if value is not None]
        if args.set or extra:
            raise ConfigError(f"--resume: cannot be combined with {', '.join(extra + (['--set'] if args.set else []))}; "
                              "a resumed run keeps its config.yaml")
        result = driver.resume(args.resume, progress=progress, stop_after_chunks=args.stop_after_chunks)
    else:
        if not args.algo and not args.config:
            raise ConfigError("train: name an algorithm (ppo, sac, td3, dqn) or give --config")
        config = driver.build_config(resolve_train_config(args))
        out = args.out or os.path.join(
            "runs", f"{config.algo}-{config.env.name.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        print(f"rlx: run directory {out}", file=sys.stderr)
        result = driver.train(config, out, progress=progress, stop_after_chunks=args.stop_after_chunks,
                              overwrite=args.overwrite)
    final = result.rows[-1] if result.rows else {}
    parts = [f"status={result.status}", f"env_steps={final.get('env_steps', 0)}"]
    for key in ("train/episode_return", "eval/episode_return"):
        if final.get(key) is not None:
            parts.append(f"{key}={final[key]:.2f}")
    parts.append(f"compile_s={result.experiment.compile_seconds:.1f}")
    print("rlx: " + " ".join(parts) + f" run_dir={result.run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rlx import evaluate

    if args.render and not os.path.isdir(os.path.dirname(os.path.abspath(args.render))):
        raise ConfigError(f"--render {args.render}: its directory does not exist")
    experiment, state, meta = evaluate.load(args.run_dir, args.episodes)
    result = experiment.evaluate(state, args.seed)
    print(f"rlx: {args.run_dir} checkpoint {meta['chunks_done']} (env step {meta['env_steps']}): "
          f"eval/episode_return={result['eval/episode_return']:.2f} +- {result['eval/episode_return_std']:.2f} "
          f"over {experiment.config.eval_episodes} episodes, eval/episode_length={result['eval/episode_length']:.1f}")
    if args.render:
        path = evaluate.render_html(experiment, evaluate.rollout(experiment, state, args.seed), args.render)
        print(f"rlx: rollout written to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
    except ConfigError as e:
        print(f"rlx: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except Exception as e:  # noqa: BLE001
        from rlx.driver import DivergenceError

        if isinstance(e, DivergenceError):
            print(f"rlx: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
