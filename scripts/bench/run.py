"""Side-by-side benchmark of raw env stepping, rlx and brax.training (PPO, SAC) on one machine.

For each (env, algorithm) it measures, one after the other in this process tree:
  raw       vmapped ``env.step`` with random actions, in this venv (rlx's jax) and in the brax venv;
  rlx       rlx training (``rlx_side.py``), in this process and, as a same-jax control, in the brax venv;
  brax      brax.training ``ppo.train``/``sac.train`` with the same hyperparameters (``mapping.py``), in a
            subprocess of the separate brax venv (``brax_venv.py``: jax 0.9.2, built once; ``brax_side.py``).
The three training runs take turns chunk by chunk (``timing.py``), so they see the same machine.

Two modes. ``throughput`` (default): two warm-up chunks/epochs of ``--iterations`` iterations (they
compile), then ``--chunks`` timed ones; steps/s and compile s as ``timing.py`` defines them, on both
sides. ``budget`` (``--gpu``, ``--preset gpu``): trains to the env-step budget (``--max-steps``) with
evaluation after every chunk/epoch, and also reports training and wall seconds and the final return.

    python scripts/bench/run.py --env 'brax/inverted_pendulum?backend=positional' \\
        --ppo-config configs/ppo_inverted_pendulum.yaml --sac-config configs/sac_inverted_pendulum.yaml
    python scripts/bench/run.py --preset cpu --json /tmp/bench_cpu.json     # scripts/bench/cpu.yaml
    python scripts/bench/run.py --gpu                                      # scripts/bench/gpu.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile

import brax_venv
import mapping
import rlx_side
import timing

from rlx import algos, driver
from rlx.config import ConfigError, to_dict

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_DIR = os.path.join(brax_venv.REPO, ".bench", "logs")


def load_suite(args: argparse.Namespace) -> dict:
    """``{"mode", "rows": [{"env", "algos": {algo: {"config", "iterations"?, "agent"?}}}]}`` from the
    preset or the command line."""
    preset = "gpu" if args.gpu else args.preset
    if preset:
        path = preset if preset.endswith(".yaml") else os.path.join(HERE, f"{preset}.yaml")
        suite = rlx_side.load_preset(path)
    else:
        configs = {"ppo": args.ppo_config, "sac": args.sac_config}
        suite = {"rows": [{"env": args.env, "algos": {a: {"config": c} for a, c in configs.items() if c}}]}
    suite["mode"] = args.mode or suite.get("mode", "throughput")
    for row in suite["rows"]:
        row["algos"] = {a: spec for a, spec in row["algos"].items() if a in args.algos}
    return suite


def agent_overrides(args: argparse.Namespace, algo: str, spec: dict) -> dict:
    """The row's ``agent`` fields, then ``--agent KEY=VALUE`` and ``--num-envs`` where ``algo`` has them."""
    fields = {f.name for f in dataclasses.fields(algos.get(algo).Config)}
    out = dict(spec.get("agent") or {})
    out.update({key: value for key, value in rlx_side.agent_overrides(args.agent).items() if key in fields})
    if args.num_envs:
        out["num_envs"] = args.num_envs
    return out


class Worker:
    """One job of ``script`` (``brax_side.py`` or ``rlx_side.py``) in the brax venv, as a subprocess.

    Started, it runs until its first gate (``timing.gate``; lockstep jobs) or to the end; ``advance`` lets
    a gated worker run its next chunk/epoch, ``finish`` runs it to the end and returns its result (or
    ``{"error": ..., "log": ...}``). Its stderr goes to ``.bench/logs/``."""

    def __init__(self, script: str, job: dict, label: str):
        os.makedirs(LOG_DIR, exist_ok=True)
        self.script, self.label = script, label
        self.log_path = os.path.join(LOG_DIR, f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{label}.log")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(job, f)
        self.job_path = f.name
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [brax_venv.ensure(), os.path.join(HERE, script), f.name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.result: dict | None = None
        self._wait()

    def _wait(self) -> None:
        """Reads the worker's stdout up to its next gate or its result (or its end)."""
        for line in self.process.stdout:
            if line.startswith("BENCH_READY"):
                return
            if line.startswith("BENCH_RESULT "):
                self.result = json.loads(line[len("BENCH_RESULT ") :])
        code = self.process.wait()
        os.remove(self.job_path)
        if self.result is None:
            with open(self.log_path) as log:
                last = (log.read().strip().splitlines() or ["no output"])[-1]
            print(
                f"bench: {self.script} {self.label} failed (exit {code}): {last}; log: {self.log_path}", file=sys.stderr
            )
            self.result = {"error": last, "log": self.log_path}

    def advance(self) -> None:
        if self.result is None:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
            self._wait()

    def finish(self) -> dict:
        while self.result is None:
            self.advance()
        return self.result


def plan_run(args: argparse.Namespace, mode: str, config: driver.RunConfig, spec: dict) -> tuple[int, int]:
    """(iterations per chunk, chunks): throughput: ``--iterations`` (or the row's) per chunk, the warm-up
    chunks plus ``--chunks`` timed ones; budget: the budget rounded down to whole chunks of the config's
    ``num_chunks`` (``--chunks`` overrides), so rlx and brax run exactly the same iterations."""
    if mode == "throughput":
        return args.iterations or spec.get("iterations", 10), timing.WARMUP + (args.chunks or spec.get("chunks", 3))
    chunks = args.chunks or config.num_chunks
    budget = min(b for b in (args.max_steps, spec.get("max_steps"), config.total_env_steps) if b)
    per_chunk = max(1, budget // (rlx_side.env_steps_per_iteration(config) * chunks))
    return per_chunk, chunks


def measure(args: argparse.Namespace, mode: str, env_spec: str, algo: str, spec: dict) -> dict:
    """One table row: raw (both venvs), rlx and brax results for ``algo`` on ``env_spec``."""
    agent = agent_overrides(args, algo, spec)
    if mode == "throughput" and algo != "ppo":
        agent["learning_starts"] = 0  # every iteration takes its gradient steps, on both sides
    config = rlx_side.preset_config(spec["config"], env_spec, agent)
    per_chunk, chunks = plan_run(args, mode, config, spec)
    steps_per_iteration = rlx_side.env_steps_per_iteration(config)
    total = per_chunk * chunks * steps_per_iteration
    run_fields = {"eval_episodes": args.eval_episodes} if args.eval_episodes else {}
    config = rlx_side.preset_config(
        spec["config"], env_spec, agent, total_env_steps=total, num_chunks=chunks, eval_every=1, **run_fields
    )
    num_envs = config.agent.num_envs
    # throughput: brax SAC still evaluates after every epoch (outside its timings); keep that cheap
    evaluation_envs = config.eval_episodes if mode == "budget" else 1
    if algo == "ppo":
        brax = mapping.ppo_job(config, total, chunks, evaluation_envs, run_evals=mode == "budget")
    else:
        brax = mapping.sac_job(config, total, chunks, evaluation_envs)
    label = f"{config.env.name.replace('/', '_')}-{algo}"
    row = {
        "env": env_spec,
        "algo": algo,
        "config": spec["config"],
        "num_envs": num_envs,
        "mode": mode,
        "iterations_per_chunk": per_chunk,
        "chunks": chunks,
        "env_steps_per_iteration": steps_per_iteration,
        "matched": brax.matched,
        "unmatched": brax.unmatched,
        "brax_job": brax.job,
    }
    print(
        f"bench: {env_spec} {algo}: {num_envs} envs, {chunks} chunks x {per_chunk} iterations x "
        f"{steps_per_iteration} env steps",
        file=sys.stderr,
        flush=True,
    )
    if mode == "throughput":
        raw_job = {
            "kind": "raw",
            "env": mapping.brax_env(config),
            "num_envs": num_envs,
            "scan_length": 100,
            "repeats": 5,
            "min_seconds": args.raw_seconds,
        }
        row["raw"] = rlx_side.bench_raw(env_spec, num_envs, min_seconds=args.raw_seconds)
        row["raw_brax_venv"] = Worker("brax_side.py", raw_job, label + "-raw").finish()
        rlx_job = {
            "kind": "train",
            "config": to_dict(config),
            "iterations_per_chunk": per_chunk,
            "timed_chunks": chunks - timing.WARMUP,
            "lockstep": True,
        }
        # Set up one after the other, then one chunk/epoch of each in turn (see timing.py).
        workers = [
            Worker("rlx_side.py", rlx_job, label + "-rlx"),
            Worker("brax_side.py", {**brax.job, "lockstep": True}, label),
        ]

        def advance_workers(chunk: int) -> None:
            for worker in workers if chunk else []:
                worker.advance()

        row["rlx"] = rlx_side.bench_train(config, per_chunk, chunks - timing.WARMUP, before_chunk=advance_workers)
        advance_workers(chunks)
        row["rlx_brax_venv"], row["brax"] = (worker.finish() for worker in workers)
    else:
        row["rlx"] = rlx_side.train_to_budget(config)
        row["brax"] = Worker("brax_side.py", {**brax.job, "lockstep": False}, label).finish()
    return row


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}"


def table(rows: list[dict], mode: str) -> list[str]:
    """The markdown table, one line per (env, algo)."""
    if mode == "throughput":
        lines = [
            "| env | algo | num_envs | raw steps/s | raw steps/s (brax venv) | rlx steps/s | "
            "rlx steps/s (brax venv) | brax steps/s | rlx/brax | rlx/brax (same venv) | rlx/raw | "
            "rlx compile s | rlx compile s (brax venv) | brax compile s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines = [
            "| env | algo | num_envs | env steps (rlx / brax) | rlx steps/s | brax steps/s | rlx/brax | "
            "rlx compile s | brax compile s | rlx train s | brax train s | rlx wall s | brax wall s | "
            "rlx final eval | brax final eval |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for r in rows:
        rlx, brax = r["rlx"], r["brax"]
        rlx_sps, brax_sps = rlx.get("steps_per_second"), brax.get("steps_per_second")
        head = f"| `{r['env']}` | {r['algo'].upper()} | {r['num_envs']} |"
        if mode == "throughput":
            raw_sps, control = r["raw"]["steps_per_second"], r["rlx_brax_venv"]
            control_sps = control.get("steps_per_second")
            lines.append(
                f"{head} {fmt(raw_sps)} | {fmt(r['raw_brax_venv'].get('steps_per_second'))} | {fmt(rlx_sps)} | "
                f"{fmt(control_sps)} | {fmt(brax_sps)} | {ratio(rlx_sps, brax_sps)} | {ratio(control_sps, brax_sps)} | "
                f"{ratio(rlx_sps, raw_sps)} | {fmt(rlx.get('compile_seconds'), '.1f')} | "
                f"{fmt(control.get('compile_seconds'), '.1f')} | {fmt(brax.get('compile_seconds'), '.1f')} |"
            )
        else:
            lines.append(
                f"{head} {rlx['env_steps']:,} / {fmt(brax.get('env_steps'), ',')} | {fmt(rlx_sps)} | "
                f"{fmt(brax_sps)} | {ratio(rlx_sps, brax_sps)} | {fmt(rlx['compile_seconds'], '.1f')} | "
                f"{fmt(brax.get('compile_seconds'), '.1f')} | {fmt(rlx['train_seconds'], '.1f')} | "
                f"{fmt(brax.get('train_seconds'), '.1f')} | {fmt(rlx['wall_seconds'], '.1f')} | "
                f"{fmt(brax.get('wall_seconds'), '.1f')} | {fmt(rlx['final_eval_return'], '.1f')} | "
                f"{fmt(brax.get('final_eval_return'), '.1f')} |"
            )
    return lines


def describe_versions(v: dict | None) -> str:
    if not v:
        return "n/a (no brax job succeeded)"
    return (
        f"jax {v['jax']} (jaxlib {v['jaxlib']}), brax {v['brax']}, mujoco-mjx {v['mujoco-mjx']}, "
        f"flax {v['flax']}, optax {v['optax']}, python {v['python']}; {v['backend']} "
        f"({v['device']} x {v['device_count']})"
    )


def report(rows: list[dict], mode: str, argv: list[str], started: datetime.datetime, checkout: str) -> str:
    """Markdown: header (date, command, machine, versions), table, timing notes, matching notes."""
    brax_versions = next((r["brax"]["versions"] for r in rows if "versions" in r["brax"]), None)
    lines = [
        f"# rlx vs brax.training ({mode}), {started:%Y-%m-%d %H:%M}",
        "",
        f"- command: `{' '.join(shlex.quote(a) for a in ['python', *argv])}`",
        f"- rlx checkout: {checkout} (at the start)",
        f"- machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}",
        f"- rlx side: {describe_versions(timing.versions())}",
        f"- brax side (brax venv): {describe_versions(brax_versions)}",
        "",
        *table(rows, mode),
        "",
    ]
    if mode == "throughput":
        lines.append(
            f"steps/s: env steps (incl. action repeat) per second, median over the timed chunks (rlx) or "
            f"epochs (brax) after {timing.WARMUP} warm-up ones; compile s: the warm-up ones' wall time "
            "minus their steps at that rate (brax PPO compiles its epoch twice, see scripts/bench/timing.py). "
            "raw: vmapped env.step with random actions, time limit, no auto-reset, all steps / all seconds "
            "over >= --raw-seconds (brax venv: brax's own EpisodeWrapper(VmapWrapper(env))). brax venv: "
            "jax 0.9.2, where brax.training runs; rlx runs there too as a same-jax control. Off-policy rows "
            "use learning_starts 0 on both sides."
        )
    else:
        lines.append(
            f"steps/s: median over chunks/epochs after {timing.WARMUP} warm-up ones; train s: all "
            "chunks/epochs (incl. compile); wall s: env creation to final evaluation (brax also evaluates "
            "once before training); final eval: mean deterministic return."
        )
    for r in rows:
        lines += [
            "",
            f"## {r['algo'].upper()} `{r['env']}` ({r['config']}, {r['chunks']} chunks x "
            f"{r['iterations_per_chunk']} iterations)",
            "",
            "matched:",
        ]
        lines += [f"- {m}" for m in r["matched"]]
        lines += ["", "not matched:"] + [f"- {m}" for m in r["unmatched"]]
        for key in ("raw_brax_venv", "rlx_brax_venv", "brax"):
            if "error" in r.get(key, {}):
                lines += ["", f"{key} failed: {r[key]['error']} (log: {r[key]['log']})"]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/inverted_pendulum?backend=positional", help="rlx env spec (brax/*)")
    p.add_argument("--ppo-config", default="configs/ppo_inverted_pendulum.yaml")
    p.add_argument("--sac-config", default="configs/sac_inverted_pendulum.yaml")
    p.add_argument("--preset", help="cpu, gpu or a suite YAML (see scripts/bench/cpu.yaml); replaces --env/--*-config")
    p.add_argument("--gpu", action="store_true", help="same as --preset gpu")
    p.add_argument("--mode", choices=("throughput", "budget"), help="default: the preset's, else throughput")
    p.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=("ppo", "sac"))
    p.add_argument("--num-envs", type=int, help="override num_envs of every run")
    p.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an agent field wherever the algorithm has it (repeatable)",
    )
    p.add_argument("--iterations", type=int, help="throughput: iterations per chunk/epoch (default: preset, 10)")
    p.add_argument(
        "--chunks",
        type=int,
        help="throughput: timed chunks (default: preset, 3); budget: chunks "
        f"(default: the config's num_chunks; > {timing.WARMUP} for a steady rate)",
    )
    p.add_argument("--max-steps", type=int, help="budget: env-step budget (default: the config's total_env_steps)")
    p.add_argument("--eval-episodes", type=int, help="budget: evaluation episodes (default: the config's)")
    p.add_argument("--raw-seconds", type=float, default=1.0, help="minimum timed seconds of each raw measurement")
    p.add_argument("--json", help="also write all results here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    started, checkout = datetime.datetime.now(), rlx_side.git_state()
    suite = load_suite(args)
    brax_venv.ensure()  # fail early, before any measurement, if it cannot be built
    rows = []
    try:
        for row in suite["rows"]:
            for algo, spec in row["algos"].items():
                rows.append(measure(args, suite["mode"], row["env"], algo, spec))
    except ConfigError as e:
        sys.exit(f"bench: {e}")
    text = report(rows, suite["mode"], sys.argv, started, checkout)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "mode": suite["mode"],
                    "command": sys.argv,
                    "date": started.isoformat(),
                    "checkout": checkout,
                    "rlx_versions": timing.versions(),
                    "rows": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
