"""Command line: ``rlx train <algo> --env suite/name [--config FILE] [--set key=value ...] ...``,
``rlx eval RUN_DIR|POLICY.npz|SWEEP_DIR [--episodes N] [--render OUT.html]``, ``rlx export RUN_DIR POLICY.npz``, ``rlx sweep <algo> --seeds N --grid ...``,
``rlx plot SWEEP_DIR`` and ``rlx algos``. The algorithm list comes from the registry (``rlx.algos``).

Config precedence (later wins): the algorithm's defaults, ``--config`` YAML, ``--env/--seed/--steps``,
``--set``. Everything is validated before anything compiles; errors are one line on stderr and
exit status 2. A diverged run exits with status 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import yaml

from rlx import compile_cache
from rlx.config import (
    ConfigError,
    apply_assignments,
    check_stop_after_chunks,
    load_yaml,
    merge,
    to_dict,
    whole_number,
)
from rlx.presets import suite_names

EXIT_CONFIG_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended


def _algorithm_names() -> str:
    from rlx.algos import ALGORITHMS

    return ", ".join(ALGORITHMS)


def _whole_number(text: str) -> int:
    """``--steps``: an integer, also in float notation (``1e6``, ``2.5e5``) when it is a whole number."""
    number = whole_number(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return number


def presets(algo: str) -> list[str]:
    """Names of the packaged presets (``rlx/configs``) for ``algo``."""
    from rlx import presets as packaged

    return [p.name for p in packaged.all_presets() if p.algo == algo]


_NO_CACHE_HELP = "do not use the persistent compilation cache (on by default; also RLX_NO_COMPILE_CACHE=1)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlx", description="JAX-native vectorized reinforcement learning")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an agent (or continue one with --resume)")
    train.add_argument("algo", nargs="?", help=f"algorithm: {_algorithm_names()} (rlx algos lists them with presets)")
    train.add_argument("--env", help="env as suite/name[?option=value&...], e.g. brax/ant?backend=mjx")
    train.add_argument("--config", help="a preset's name (rlx presets lists them) or a YAML file")
    train.add_argument(
        "--no-preset",
        action="store_true",
        help="without --config, use the algorithm's defaults even where a tuned preset exists for the env",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. agent.learning_rate=1e-3 (repeatable)",
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--steps", type=_whole_number, help="total env steps (1e6 is read as 1000000)")
    train.add_argument("--out", help="run directory (default runs/<algo>-<env>-<time>)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument(
        "--stop-after-chunks",
        type=int,
        metavar="N",
        help="checkpoint and stop after N chunks (for preemptible jobs); continue with --resume",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    train.add_argument(
        "--print-config",
        action="store_true",
        help="print the full validated config (preset, extends, flags, --set and defaults) as YAML and exit",
    )
    sweep = sub.add_parser("sweep", help="train seeds x traced-hyperparameter settings together (vmapped, sharded)")
    sweep.add_argument("algo", nargs="?", help="algorithm (or give it in --config / --spec)")
    sweep.add_argument("--spec", help="sweep YAML: base, config, seeds, grid, random, num_random, random_seed, groups")
    sweep.add_argument("--config", help="a preset's name or a YAML file for the base run config")
    sweep.add_argument(
        "--no-preset",
        action="store_true",
        help="without --config or --spec, use the algorithm's defaults even where a tuned preset exists for the env",
    )
    sweep.add_argument("--env", help="env as suite/name[?option=value&...]")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a base field")
    sweep.add_argument("--steps", type=_whole_number, help="total env steps per run (1e6 is read as 1000000)")
    sweep.add_argument("--seeds", help="a count N (seeds 0..N-1) or a list 0,3,7")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="vmapped grid over a traced field, e.g. agent.learning_rate=3e-4,1e-3 (repeatable)",
    )
    sweep.add_argument(
        "--random",
        action="append",
        default=[],
        metavar="FIELD=LOW:HIGH[:log]",
        help="vmapped random values of a traced field (with --num-random)",
    )
    sweep.add_argument("--num-random", type=int, help="random settings to draw")
    sweep.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="static field: one compiled group per value, e.g. agent.num_envs=16,64",
    )
    sweep.add_argument(
        "--pbt",
        metavar="FIELD,FIELD",
        help="population-based training of each group's runs, perturbing these traced fields (pbt: in a spec sets the rest)",
    )
    sweep.add_argument("--pbt-every", type=int, metavar="N", help="with --pbt: chunks between exploit/explore steps")
    sweep.add_argument(
        "--pbt-resample",
        type=float,
        metavar="P",
        help="with --pbt: probability that a copy's field is drawn from its grid/random axis instead of perturbed",
    )
    sweep.add_argument("--devices", type=int, help="shard runs over the first N devices (default: all)")
    sweep.add_argument("--out", help="sweep directory (default sweeps/<algo>-<env>-<time>)")
    sweep.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its checkpoints")
    sweep.add_argument("--overwrite", action="store_true", help="replace a sweep already in --out")
    sweep.add_argument(
        "--stop-after-chunks",
        type=int,
        metavar="N",
        help="checkpoint and stop in the first group that trains N chunks in this session (groups run one after "
        "another, each counting its own: one that finishes in fewer lets the next start)",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs (name, compiled group, setting, seed, swept values), validated, and exit without training",
    )
    sweep.add_argument(
        "--coordinator",
        default=os.environ.get("JAX_COORDINATOR_ADDRESS"),
        metavar="HOST:PORT",
        help="multi-process: address of process 0 (env JAX_COORDINATOR_ADDRESS)",
    )
    sweep.add_argument(
        "--num-processes",
        type=int,
        default=_env_int("RLX_NUM_PROCESSES"),
        help="multi-process: number of processes (env RLX_NUM_PROCESSES)",
    )
    sweep.add_argument(
        "--process-id",
        type=int,
        default=_env_int("RLX_PROCESS_ID"),
        help="multi-process: this process's index (env RLX_PROCESS_ID)",
    )
    plot = sub.add_parser("plot", help="PNG learning curves of a run, or curves and final-score bars of a sweep")
    plot.add_argument("sweep_dir", metavar="DIR", help="a run directory (rlx train) or a sweep directory (rlx sweep)")
    plot.add_argument("--metric", help="sweeps: the metrics.jsonl column to plot (default eval/episode_return)")
    plot.add_argument("--out", help="directory for the PNGs (default: DIR)")
    comparing = sub.add_parser(
        "compare",
        help="sweeps' settings side by side: IQM and 95%% CI over seeds, the difference to the first and the "
        "probability of improvement over it",
    )
    comparing.add_argument(
        "targets",
        nargs="*",
        metavar="SWEEP_DIR[:SETTING]",
        help="sweep directories (each of their settings), one setting of one (its number in settings.csv) or rlx "
        "bench directories (each of their entries); the first entry is the baseline",
    )
    comparing.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME=SWEEP_DIR[:SETTING][,...]",
        help="instead of targets: a method across tasks (each setting's env is its task), at least twice; the "
        "probability of improvement over the first is averaged over the tasks",
    )
    comparing.add_argument(
        "--normalize",
        action="append",
        default=[],
        metavar="TASK=LOW:HIGH[,...]",
        help="with --method: scores of TASK mapped to (score - low) / (high - low) (*=LOW:HIGH: every task not "
        "named), adding each method's IQM over all tasks pooled and its difference from the first",
    )
    comparing.add_argument("--metric", default="eval/episode_return", help="the metrics.jsonl column to compare")
    comparing.add_argument(
        "--at",
        metavar="ENV_STEPS|N%",
        help="scores at the last evaluation at or before these env steps, or this share of each entry's budget "
        "(50%%: half the env steps its runs train; default: the last evaluation)",
    )
    comparing.add_argument("--threshold", type=float, help="also: env steps until the IQM curve first reaches it")
    comparing.add_argument("--out", help="also write compare.md, compare.json and compare.png into this directory")
    bench = sub.add_parser(
        "bench", help=f"run a reproduction suite ({', '.join(suite_names())}): sweeps and a report vs references"
    )
    bench.add_argument("suite", nargs="?", help="a packaged suite's name or a suite YAML (none: list the suites)")
    bench.add_argument("--out", help="report directory (default bench/<suite>); finished entries there are kept")
    bench.add_argument("--only", action="append", default=[], metavar="ENTRY", help="run only this entry (repeatable)")
    bench.add_argument(
        "--tiny", action="store_true", help="one iteration and two seeds per entry (checks the machinery)"
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    sub.add_parser("algos", help="list the algorithms: action spaces, presets, description")
    listing = sub.add_parser("presets", help="list the packaged presets: algorithm, env, budget, what they reach")
    listing.add_argument("algo", nargs="?", help="only this algorithm's presets")
    evaluate = sub.add_parser(
        "eval",
        help="evaluate a saved run's policy (newest valid checkpoint), an exported policy file, or every run of a "
        "sweep (a table per run and per setting: IQM and 95%% CI over seeds)",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR|POLICY.npz|SWEEP_DIR")
    evaluate.add_argument("--episodes", type=int, help="deterministic episodes (default: the run's eval_episodes)")
    evaluate.add_argument("--render", metavar="OUT.html", help="also write one rollout as an HTML page")
    evaluate.add_argument(
        "--seed",
        type=int,
        help="evaluation key S: the one training's evaluation after chunk S+1 used (default: the checkpoint's "
        "chunk, so a run's newest checkpoint reproduces its logged evaluation there)",
    )
    evaluate.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    export = sub.add_parser(
        "export", help="write a run's policy (what acting reads of its newest checkpoint) to one .npz file"
    )
    export.add_argument("run_dir")
    export.add_argument("out", metavar="POLICY.npz")
    export.add_argument("--overwrite", action="store_true", help="replace an existing POLICY.npz")
    export.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    return parser


def default_preset(args: argparse.Namespace):
    """The packaged preset ``rlx train`` starts from without ``--config``: the one tuned for the algorithm on
    the env (``rlx presets``), unless ``--no-preset``; None if there is none."""
    if args.config or not args.algo or getattr(args, "no_preset", False):
        return None
    from rlx import presets
    from rlx.driver import RunConfig
    from rlx.envs import parse_env_spec

    env_name = parse_env_spec(args.env)["name"] if args.env else RunConfig().env.name
    return presets.default_for(args.algo, env_name)


def _announce(chosen, algo: str, env_name: str) -> None:
    """Says on stderr which :func:`default_preset` a command starts from, if any."""
    if chosen is not None:
        steps = f"{chosen.total_env_steps:,} env steps" if chosen.total_env_steps else "its budget"
        print(
            f"rlx: using preset {chosen.name} for {algo} on {env_name} ({steps}; reaches {chosen.reaches}); "
            "--no-preset for the algorithm's defaults",
            file=sys.stderr,
        )


def resolve_train_config(args: argparse.Namespace) -> dict:
    """Merges defaults, preset, flags and ``--set`` into plain data (validated by the driver). Without
    ``--config``, the :func:`default_preset` is the base when there is one."""
    from rlx import presets
    from rlx.envs import parse_env_spec

    data: dict = {}
    env = parse_env_spec(args.env) if args.env else None
    chosen = default_preset(args)
    if args.config:
        data = presets.load(args.config)
        preset_algo = data.get("algo")
        if args.algo and preset_algo and preset_algo != args.algo:
            raise ConfigError(f"--config {args.config}: is a preset for algo {preset_algo!r}, not {args.algo!r}")
    elif chosen is not None:
        data = presets.load(chosen.path)
        if env is not None:  # the preset's env options (e.g. backend) stay unless the flag sets others
            env = merge(data.get("env") or {}, env)
    if args.algo:
        data["algo"] = args.algo
    if env is not None:
        same_env = env["name"] == (data.get("env") or {}).get("name")
        data = merge(data, {"env": env})
        if args.config and "?" not in args.env and not same_env:  # a new env drops the preset's env options
            data["env"] = {"name": data["env"]["name"]}
    if args.seed is not None:
        data["seed"] = args.seed
    if args.steps is not None:
        data["total_env_steps"] = args.steps
    named = data.get("algo")
    data = apply_assignments(data, args.set)
    _check_algo_kept(named, data.get("algo"), "train")
    return data


def _check_algo_kept(named: str | None, assigned: Any, command: str) -> None:
    """A ConfigError when ``--set algo=`` changes the algorithm the command line or ``--config`` named (it trained
    the other one silently, or failed on the named one's fields)."""
    if named is not None and assigned != named:
        raise ConfigError(
            f"--set algo={assigned}: the algorithm is {named!r}, named on the command line or by --config; "
            f"name the other instead (rlx {command} {assigned} ...)"
        )


def _train(args: argparse.Namespace) -> int:
    from rlx import driver, host

    progress = not args.quiet
    check_stop_after_chunks(args.stop_after_chunks, "--stop-after-chunks")
    if args.resume:
        extra = [
            flag
            for flag, value in (
                ("algo", args.algo),
                ("--env", args.env),
                ("--config", args.config),
                ("--seed", args.seed),
                ("--out", args.out),
                ("--overwrite", args.overwrite or None),
                ("--no-preset", args.no_preset or None),
            )
            if value is not None
        ]
        if args.set or extra:
            raise ConfigError(
                f"--resume: cannot be combined with {', '.join(extra + (['--set'] if args.set else []))}; "
                "a resumed run keeps its config.yaml"
            )
        if args.print_config:
            config = driver.resumed_config(driver.load_run_config(args.resume), args.steps)
            print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
            return 0
        result = driver.resume(
            args.resume, progress=progress, stop_after_chunks=args.stop_after_chunks, total_env_steps=args.steps
        )
    else:
        if not args.algo and not args.config:
            raise ConfigError(f"train: name an algorithm ({_algorithm_names()}) or give --config")
        config = driver.build_config(resolve_train_config(args))
        if args.print_config:  # what the run would record as config.yaml; the env is made and checked, nothing compiled
            driver.Experiment(config)
            print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
            return 0
        _announce(default_preset(args), config.algo, config.env.name)
        out = args.out or os.path.join(
            "runs", f"{config.algo}-{config.env.name.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        host.refuse_inside(out)  # before it is named
        print(f"rlx: run directory {out}", file=sys.stderr)
        result = driver.train(
            config, out, progress=progress, stop_after_chunks=args.stop_after_chunks, overwrite=args.overwrite
        )
    final = result.rows[-1] if result.rows else {}
    parts = [f"status={result.status}", f"env_steps={final.get('env_steps', 0)}"]
    for key in ("train/episode_return", "eval/episode_return"):
        if final.get(key) is not None:
            parts.append(f"{key}={final[key]:.2f}")
    parts.append(f"compile_s={result.experiment.compile_seconds:.1f}{_cache_hits(result.compile_cache)}")
    print("rlx: " + " ".join(parts) + f" run_dir={result.run_dir}")
    return 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def sweep_spec_data(args: argparse.Namespace) -> tuple[dict, str]:
    """Merges ``--spec``, ``--config`` and the sweep flags into sweep-file data (validated by rlx.sweep)."""
    from rlx import presets

    data: dict = {}
    base_dir = "."
    if args.spec:
        spec_path = presets.resolve_sweep(args.spec)
        data = load_yaml(spec_path, "--spec")
        base_dir = os.path.dirname(os.path.abspath(spec_path))
    if args.config:
        data = {**data, "base": os.path.abspath(presets.resolve(args.config))}
        preset_algo = presets.load(data["base"]).get("algo")
        if args.algo and preset_algo and preset_algo != args.algo:  # as rlx train
            raise ConfigError(f"--config {args.config}: is a preset for algo {preset_algo!r}, not {args.algo!r}")
    named_base = bool(data.get("base"))  # by --config or the spec file, not chosen for the env
    chosen = None if args.spec else default_preset(args)
    if chosen is not None:  # as rlx train: the preset tuned for the algorithm on the env
        data = {**data, "base": chosen.path}
    config: dict = {}
    named = args.algo or (preset_algo if args.config else None)
    if args.algo:
        config["algo"] = args.algo
    if args.env:
        from rlx.envs import EnvConfig, parse_env_spec

        config["env"] = parse_env_spec(args.env)
        if named_base and "?" not in args.env:  # as rlx train: a new env drops the named base's env options
            config["env"] = {**to_dict(EnvConfig()), **config["env"]}
    if args.steps is not None:
        config["total_env_steps"] = args.steps
    config = apply_assignments(config, args.set)
    if "algo" in config:
        _check_algo_kept(named, config["algo"], "sweep")
    if not isinstance(data.get("config") or {}, dict):
        raise ConfigError(f"config: expected a mapping of run-config fields, got {data['config']!r}")
    data["config"] = merge(data.get("config") or {}, config)
    if args.seeds is not None:
        try:
            data["seeds"] = [int(s) for s in args.seeds.split(",")] if "," in args.seeds else int(args.seeds)
        except ValueError:
            raise ConfigError(f"--seeds: a count N or a list of integers a,b,c; got {args.seeds!r}") from None
    for flag, key in ((args.grid, "grid"), (args.random, "random"), (args.group, "groups")):
        given: set[str] = set()
        for text in flag:
            if "=" not in text:
                raise ConfigError(
                    f"--{key.rstrip('s')} {text!r}: expected FIELD=VALUES, e.g. agent.learning_rate=3e-4,1e-3"
                )
            path, values = text.split("=", 1)
            if path.strip() in given:  # the last one won silently
                raise ConfigError(f"--{key.rstrip('s')} {path.strip()}: given twice; list every value in one")
            given.add(path.strip())
            data[key] = {**(data.get(key) or {}), path.strip(): values}
    if args.num_random is not None:
        data["num_random"] = args.num_random
    for flag, value in (("--pbt-every", args.pbt_every), ("--pbt-resample", args.pbt_resample)):
        if value is not None and args.pbt is None and not isinstance(data.get("pbt"), dict):
            raise ConfigError(f"{flag}: needs --pbt FIELD,... (the fields population-based training perturbs)")
    for key, value in (("fields", args.pbt), ("every", args.pbt_every), ("resample", args.pbt_resample)):
        if value is not None:
            data["pbt"] = {**(data.get("pbt") if isinstance(data.get("pbt"), dict) else {}), key: value}
    return data, base_dir


def _sweep_dry_run(spec, num_devices: int | None = None) -> int:
    """Prints the runs ``spec`` expands to, each config validated, its env made and checked against the algorithm,
    and its budget planned; compiles nothing."""
    from rlx import driver, sweep

    groups = sweep.expand(spec)
    sweep.print_notes(sweep.checked_experiments(groups, num_devices, spec.pbt))
    rows = []
    for group in groups:
        for m in group.members:
            rows.append({"run": m.name, "group": m.group, "setting": m.setting, "seed": m.seed, **m.values})
    print(sweep.markdown_table(rows))
    described: dict[str, list[int]] = {}  # what a group trains -> its groups (groups may differ in env or budget)
    for group in groups:
        config = group.config
        planned = driver.plan_for(config).total_env_steps  # what the runs train: whole iterations
        asked = (
            ""
            if planned == config.total_env_steps
            else f" ({config.total_env_steps:,} asked, rounded up to whole iterations)"
        )
        described.setdefault(f"{config.algo} on {config.env.name}, {planned:,} env steps each{asked}", []).append(
            group.index
        )
    if len(described) == 1:
        what = next(iter(described))
    else:
        what = "; ".join(f"group{'s' * (len(i) > 1)} {', '.join(map(str, i))}: {text}" for text, i in described.items())
    if spec.pbt is not None:
        population = spec.pbt
        what += (
            f"; population-based training of {', '.join(population.fields)} every {population.every} chunk(s): the "
            f"bottom {population.fraction:.0%} by {population.metric} continue as copies of the top {population.fraction:.0%}"
        )
        if population.resample:
            what += f", each field drawn afresh from its axis with probability {population.resample:g}"
    print(
        f"rlx: {len(rows)} run{'s' * (len(rows) != 1)} in {len(groups)} compiled group(s); {what} "
        "(rlx train --config ... --print-config shows a full config)"
    )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import jax

    from rlx import host, sweep

    check_stop_after_chunks(args.stop_after_chunks, "--stop-after-chunks")
    # a dry run compiles and writes nothing: it checks the flags without joining (and waiting for) the other processes
    sweep.init_distributed(args.coordinator, args.num_processes, args.process_id, join=not args.dry_run)
    options = dict(progress=not args.quiet, stop_after_chunks=args.stop_after_chunks, num_devices=args.devices)
    if args.resume:
        given = [
            f
            for f, v in (
                ("algo", args.algo),
                ("--spec", args.spec),
                ("--config", args.config),
                ("--env", args.env),
                ("--steps", args.steps),
                ("--seeds", args.seeds),
                ("--num-random", args.num_random),
                ("--out", args.out),
                ("--overwrite", args.overwrite or None),
                ("--no-preset", args.no_preset or None),
            )
            if v is not None
        ] + [
            f"--{k.replace('_', '-')}"
            for k in ("set", "grid", "random", "group", "pbt", "pbt_every", "pbt_resample")
            if getattr(args, k) not in (None, [])  # --pbt-resample 0 is given too
        ]
        given += ["--dry-run"] if args.dry_run else []
        if given:
            raise ConfigError(
                f"--resume: cannot be combined with {', '.join(given)}; a resumed sweep keeps its sweep.yaml"
            )
        result = sweep.resume(args.resume, **options)
    else:
        data, base_dir = sweep_spec_data(args)
        spec = sweep.spec_from_dict(data, base_dir)
        algo = spec.config.get("algo", "ppo")
        env_name = str((spec.config.get("env") or {}).get("name", "env"))
        if not args.spec:
            _announce(default_preset(args), algo, env_name)
        if args.dry_run:
            return _sweep_dry_run(spec, args.devices)
        env = env_name.replace("/", "_")
        out = args.out or os.path.join("sweeps", f"{algo}-{env}-{time.strftime('%Y%m%d-%H%M%S')}")
        experiments = sweep.checked_experiments(sweep.expand(spec), args.devices, spec.pbt)  # before it is named
        host.refuse_inside(out)
        if jax.process_index() == 0:  # the only one that writes there
            print(f"rlx: sweep directory {out}", file=sys.stderr)
        result = sweep.run(spec, out, overwrite=args.overwrite, experiments=experiments, **options)
    if jax.process_index() == 0:
        print(sweep.markdown_table(result.table))
        diverged = sum(r["status"] == "diverged" for r in result.runs)
        print(
            f"rlx: status={result.status} runs={len(result.runs)}{f' diverged={diverged}' if diverged else ''} "
            f"compile_s={result.compile_seconds:.1f}{_cache_hits(result.compile_cache)} sweep_dir={result.sweep_dir}"
        )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from rlx import repro

    if not args.suite:
        for name in repro.suite_names():
            suite = repro.load_suite(name)
            summary = suite.description.split(". ")[0]
            print(f"{name:8s} {len(suite.entries):3d} entries  {summary}")
        return 0
    suite = repro.load_suite(args.suite)
    out = args.out or os.path.join("bench", suite.name + ("-tiny" if args.tiny else ""))
    repro.run_suite(suite, out, only=tuple(args.only), tiny=args.tiny, progress=not args.quiet, announce=True)
    with open(os.path.join(out, "report.md")) as f:
        print(f.read(), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from rlx import compare

    at = None if args.at is None else compare.parse_at(args.at)
    compare.check_arguments(args.metric, at, args.threshold, args.out)
    if args.method:
        if args.targets:
            raise ConfigError(f"compare: {args.targets[0]}: give targets or --method options, not both")
        if args.threshold is not None:
            raise ConfigError("--threshold: not with --method (steps to a threshold differ per task); compare one task")
        normalize = compare.parse_normalize(args.normalize) if args.normalize else None
        result = compare.compare_methods(compare.parse_methods(args.method), args.metric, at, normalize=normalize)
        print(compare.methods_table(result, args.metric, at))
        if args.out:
            for path in compare.write_methods(result, args.metric, at, args.out):
                print(f"rlx: wrote {path}")
        return 0
    if args.normalize:
        raise ConfigError("--normalize: only with --method (one task's scores are compared as they are)")
    if not args.targets:
        raise ConfigError("compare: name sweep directories (SWEEP_DIR[:SETTING] ...) or methods (--method NAME=...)")
    found = compare.entries(args.targets, args.metric)
    rows = compare.compare_entries(found, args.metric, at, args.threshold)
    print(compare.table(rows, args.metric, at, args.threshold))
    if args.out:
        for path in compare.write(found, rows, args.metric, at, args.threshold, args.out):
            print(f"rlx: wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from rlx import plot

    if not os.path.isdir(args.sweep_dir):
        raise ConfigError(f"plot {args.sweep_dir}: no such directory")
    has = {name: os.path.exists(os.path.join(args.sweep_dir, name)) for name in ("sweep.yaml", "config.yaml")}
    if not any(has.values()):
        raise ConfigError(
            f"plot {args.sweep_dir}: neither an rlx run directory (config.yaml) nor a sweep directory (sweep.yaml)"
        )
    single_run = not has["sweep.yaml"]
    if single_run and not os.path.exists(os.path.join(args.sweep_dir, "metrics.jsonl")):
        raise ConfigError(f"plot {args.sweep_dir}: the run has logged no metrics yet")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ConfigError(f"--out {args.out}: is a file; plot writes its images into a directory")
    if args.metric is not None and not args.metric.strip():
        raise ConfigError("--metric: empty; name a metrics.jsonl column, e.g. eval/episode_return")
    if single_run and args.metric:
        raise ConfigError("--metric: sweeps only; a run's curve.png shows its training and evaluation returns")
    paths = (
        plot.plot_run(args.sweep_dir, args.out)
        if single_run
        else plot.plot_sweep(args.sweep_dir, args.out, args.metric or "eval/episode_return")
    )
    for path in paths:
        print(f"rlx: wrote {path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rlx import evaluate

    if args.render and not os.path.isdir(os.path.dirname(os.path.abspath(args.render))):
        raise ConfigError(f"--render {args.render}: its directory does not exist")
    if args.render and (os.path.isdir(args.render) or not args.render.lower().endswith((".html", ".htm"))):
        # an .html name, so a slip cannot write the page over a run's config.yaml or checkpoint
        raise ConfigError(f"--render {args.render}: must name the .html file to write, e.g. rollout.html")
    if args.seed is not None and not 0 <= args.seed < 2**32:  # folded into the evaluation key as a uint32
        raise ConfigError(f"--seed: must be >= 0 and < {2**32}; got {args.seed}")
    if os.path.isfile(os.path.join(args.run_dir, "sweep.yaml")):
        return _eval_sweep(args)
    if args.run_dir.lower().endswith(".npz") and not os.path.isfile(args.run_dir):
        raise ConfigError(f"{args.run_dir}: no such policy file")
    exported = os.path.isfile(args.run_dir)  # a policy file, not a run directory
    if exported:
        from rlx import inference

        policy = inference.load(args.run_dir)
        if args.episodes is not None:
            policy = policy.with_eval_episodes(args.episodes, "--episodes")
        seed = evaluate.eval_seed(args.seed, policy.source.get("chunks_done"))
        experiment, result, where = policy.experiment, policy.evaluate(seed), _policy_origin(policy)
    else:
        experiment, state, meta = evaluate.load(args.run_dir, args.episodes)
        seed = evaluate.eval_seed(args.seed, meta["chunks_done"])
        result, where = (
            experiment.evaluate(state, seed),
            f"checkpoint {meta['chunks_done']} (env step {meta['env_steps']})",
        )
    print(
        f"rlx: {args.run_dir} {where}: "
        f"eval/episode_return={result['eval/episode_return']:.2f} +- {result['eval/episode_return_std']:.2f} "
        f"over {experiment.config.eval_episodes} episodes{_evaluated_model(experiment.config)}, "
        f"eval/episode_length={result['eval/episode_length']:.1f}, "
        f"evaluation key {seed}{_cache_hits(compile_cache.stats())}"
    )
    if args.render:
        trajectory = policy.rollout(seed) if exported else evaluate.rollout(experiment, state, seed)
        path = evaluate.render_html(experiment, trajectory, args.render)
        print(f"rlx: rollout written to {path}")
    return 0


def _eval_sweep(args: argparse.Namespace) -> int:
    from rlx import evaluate
    from rlx.sweep import markdown_table

    if args.render:
        raise ConfigError("--render: renders one run; give it a run of the sweep (SWEEP_DIR/runs/NAME)")
    runs, table = evaluate.evaluate_sweep(args.run_dir, args.episodes, args.seed)
    columns = ("run", "status", "chunks_done", "eval/episode_return", "eval/episode_return_std", "eval/episode_length")
    print(markdown_table([{k: r.get(k) for k in columns} for r in runs]))
    print()
    print(markdown_table(table))
    hits = _cache_hits(compile_cache.stats())
    if hits:
        print(f"rlx:{hits}")
    return 0


def _evaluated_model(config) -> str:
    """For a run with domain randomization, which model its evaluation episodes ran on; else nothing."""
    randomize = config.env.randomize
    if not randomize.enabled:
        return ""
    model = "the nominal model" if randomize.evaluate == "nominal" else "randomized models"
    return f" on {model} (env.randomize.evaluate: {randomize.evaluate})"


def _cache_hits(stats: dict) -> str:
    """`` compile_cache_hits=H/R`` for a final line, or nothing when the cache is off."""
    return "" if not stats or stats["dir"] is None else f" compile_cache_hits={stats['hits']}/{stats['requests']}"


def _policy_origin(policy) -> str:
    source = policy.source
    if "chunks_done" in source:
        return f"(exported from {source.get('run_dir')} checkpoint {source['chunks_done']}, env step {source['env_steps']})"
    return "(exported policy)"


def _export(args: argparse.Namespace) -> int:
    from rlx import inference

    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"export {args.run_dir}: not a run directory")
    if os.path.isfile(os.path.join(args.run_dir, "sweep.yaml")):
        raise ConfigError(f"export {args.run_dir}: a sweep; export one of its runs (SWEEP_DIR/runs/NAME)")
    policy = inference.from_run(args.run_dir, what="export")
    policy.save(args.out, overwrite=args.overwrite)
    source = policy.source
    print(
        f"rlx: wrote {args.out}: {args.run_dir} checkpoint {source['chunks_done']} (env step {source['env_steps']}), "
        f"{len(policy.paths)} arrays, {policy.nbytes:,} bytes (the parts of the train state acting reads), and the "
        "policy as a jax.export program (acts with JAX alone: see README, Trained policies)"
    )
    return 0


def _algos(args: argparse.Namespace) -> int:
    from rlx.algos import load_plugins

    algorithms = load_plugins()
    width = max(len(name) for name in algorithms)
    for name, module in algorithms.items():
        print(f"{name.ljust(width)}  [{', '.join(module.ACTION_SPACES)}]  {module.DESCRIPTION}")
        print(f"{' ' * width}  presets: {', '.join(presets(name)) or '-'}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from rlx import presets

    rows = [p for p in presets.all_presets() if args.algo in (None, p.algo)]
    if args.algo and not rows:
        raise ConfigError(f"presets: no preset for algo {args.algo!r}; algorithms: {_algorithm_names()}")
    header = ("preset", "algo", "env", "env steps", "reaches")
    table = [
        (
            p.name + (" *" if p.default else ""),
            p.algo,
            ", ".join(p.default_envs) if len(p.default_envs) > 1 else p.env,
            f"{p.total_env_steps:,}" if p.total_env_steps else "-",
            p.reaches,
        )
        for p in rows
    ]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(4)]
    for row in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    print(
        f"* the default for its algorithm and env(s) (rlx train ALGO --env ENV; a preset listing several envs is "
        f"written for their family and runs the first); files in {presets.PRESETS_DIR}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("train", "sweep", "eval", "export", "bench"):
        if getattr(args, "no_compile_cache", False):
            compile_cache.disable()
        else:
            compile_cache.enable()
    try:
        if getattr(args, "env", None) is not None and not args.env.strip():  # an unset shell variable, say
            raise ConfigError(
                "--env: empty; expected suite/name, e.g. gymnax/CartPole-v1 (leave --env out for the default)"
            )
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "export":
            return _export(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "algos":
            return _algos(args)
        if args.command == "presets":
            return _presets(args)
    except ConfigError as e:
        print(f"rlx: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:  # Ctrl-C: the driver has already written what it had; no traceback
        again = {"bench": "run the same rlx bench command again", "train": "--resume", "sweep": "--resume"}
        kept = ""
        if args.command in again:  # the commands that train
            kept = f" (checkpoints and logs up to the newest checkpoint are kept: {again[args.command]})"
        print(f"rlx: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rlx presets | head`: the reader left; no traceback (the Python docs' recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 1
    except Exception as e:
        from rlx.driver import DivergenceError

        if isinstance(e, DivergenceError):
            print(f"rlx: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
