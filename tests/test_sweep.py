"""Sweeps: spec validation, seed-in-sweep vs seed alone, per-run results, resume, plots, sharding over 4
simulated devices and a real 2-process (jax.distributed, CPU collectives) sweep."""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import yaml
from helpers import CONFIGS, subprocess_env, tree_equal

from rlx import cli, driver, evaluate, plot, sweep
from rlx.config import ConfigError, load_yaml
from rlx.sweep.runner import traced_values

# PPO on CartPole, small enough that 16 runs train in seconds: 2 chunks of 4 iterations of 16 envs x 32 steps.
SMALL = [
    "--set",
    "agent.num_envs=16",
    "--set",
    "agent.unroll_length=32",
    "--set",
    "agent.policy.hidden=[32]",
    "--set",
    "agent.value.hidden=[32]",
    "--set",
    "num_chunks=2",
    "--set",
    "eval_episodes=4",
    "--set",
    "tensorboard=false",
    "--steps",
    "4096",
]
SWEEP_ARGS = [
    "sweep",
    "ppo",
    "--config",
    os.path.join(CONFIGS, "ppo_cartpole.yaml"),
    *SMALL,
    "--seeds",
    "8",
    "--grid",
    "agent.learning_rate=3e-4,1e-3",
    "--quiet",
]


@pytest.fixture(scope="module")
def cli_sweep(tmp_path_factory):
    """``rlx sweep`` of PPO on gymnax/CartPole-v1, 8 seeds x 2 learning rates, then ``rlx plot``."""
    out = str(tmp_path_factory.mktemp("sweep") / "lr")
    assert cli.main([*SWEEP_ARGS, "--out", out]) == 0
    assert cli.main(["plot", out]) == 0
    return out


def tiny_ppo(total_env_steps, num_chunks):
    """PPO on CartPole with 4 envs x 32 steps per iteration and 8-wide networks: a run config dict."""
    agent = {"num_envs": 4, "unroll_length": 32, "num_minibatches": 2, "num_epochs": 1}
    agent.update(policy={"hidden": [8]}, value={"hidden": [8]})
    return {
        "algo": "ppo",
        "env": {"name": "gymnax/CartPole-v1"},
        "total_env_steps": total_env_steps,
        "num_chunks": num_chunks,
        "eval_episodes": 2,
        "agent": agent,
    }


def final_params(run_dir):
    return evaluate.load(run_dir)[1].params


def test_cli_sweep_writes_a_run_directory_per_run_and_summary_tables(cli_sweep, capsys):
    runs = sorted(os.listdir(os.path.join(cli_sweep, "runs")))
    assert runs == [f"h{h:02d}-seed{s}" for h in range(2) for s in range(8)]
    for name in runs:
        run_dir = os.path.join(cli_sweep, "runs", name)
        rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
        assert [r["env_steps"] for r in rows] == [2048, 4096] and all("eval/episode_return" in r for r in rows)
        assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["1", "2"]
        assert json.load(open(os.path.join(run_dir, "summary.json")))["status"] == "completed"
        config = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
        assert config["seed"] == int(name.split("seed")[1])
        assert config["agent"]["learning_rate"] == (3e-4, 1e-3)[int(name[1:3])]
    table = list(csv.DictReader(open(os.path.join(cli_sweep, "summary.csv"))))
    assert len(table) == 16 and {r["status"] for r in table} == {"completed"}
    assert {float(r["agent.learning_rate"]) for r in table} == {3e-4, 1e-3}
    settings = list(csv.DictReader(open(os.path.join(cli_sweep, "settings.csv"))))
    assert [int(r["seeds"]) for r in settings] == [8, 8]
    for row in settings:
        scores = [float(r["eval/episode_return"]) for r in table if r["setting"] == row["setting"]]
        assert float(row["ci_low"]) <= float(row["eval/episode_return IQM"]) <= float(row["ci_high"])
        assert min(scores) <= float(row["eval/episode_return IQM"]) <= max(scores)


def test_rlx_plot_writes_curves_and_final_score_pngs(cli_sweep):
    for name in ("curves.png", "final.png"):
        with open(os.path.join(cli_sweep, name), "rb") as f:
            data = f.read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    curves = __import__("rlx.plot").plot.curves(cli_sweep)
    assert set(curves) == {"learning_rate=0.0003", "learning_rate=0.001"}
    for d in curves.values():
        assert list(d["env_steps"]) == [2048, 4096] and np.all(d["low"] <= d["iqm"]) and np.all(d["iqm"] <= d["high"])


def test_rlx_compare_puts_settings_side_by_side_with_intervals_from_the_runs_metrics(cli_sweep, tmp_path, capsys):
    """Each row's IQM, difference to the first and probability of improvement are recomputed from the runs'
    metrics.jsonl; ``DIR:N`` picks one setting and sets the order; bad input is one line before anything is read."""
    from rlx import compare, stats

    def returns(setting, chunk):
        return np.array(
            [
                [
                    json.loads(line)
                    for line in open(os.path.join(cli_sweep, "runs", f"h{setting:02d}-seed{s}", "metrics.jsonl"))
                ][chunk]["eval/episode_return"]
                for s in range(8)
            ]
        )

    out = tmp_path / "cmp"
    assert cli.main(["compare", f"{cli_sweep}:1", f"{cli_sweep}:0", "--threshold", "-1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.load(open(out / "compare.json"))["rows"]
    name = os.path.normpath(cli_sweep)
    assert [r["label"] for r in rows] == [f"{name}: learning_rate=0.001", f"{name}: learning_rate=0.0003"]
    first, second = returns(1, -1), returns(0, -1)
    assert [r["env_steps"] for r in rows] == [4096, 4096] and [r["seeds"] for r in rows] == [8, 8]
    assert [rows[0][k] for k in ("iqm", "ci_low", "ci_high")] == pytest.approx(list(stats.bootstrap_ci(first)))
    assert rows[0]["difference"] is None and rows[0]["steps_to_threshold"] == 2048  # every IQM is >= -1
    assert rows[1]["difference"] == pytest.approx(list(stats.bootstrap_ci_between(second, first)))
    assert rows[1]["difference"][0] == pytest.approx(stats.iqm(second) - stats.iqm(first))
    assert rows[1]["p_improvement"][0] == pytest.approx(stats.probability_of_improvement(second, first))
    low, high = rows[1]["difference"][1:]
    assert rows[1]["verdict"] == ("higher" if low > 0 else "lower" if high < 0 else "not separated")
    assert printed.count(f"| {name}: learning_rate=") == 2 and "(first)" in printed and "steps to IQM ≥ -1" in printed
    assert (out / "compare.md").read_text().startswith("| entry | seeds |")
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    at_first = compare.compare([cli_sweep], at=3000)  # the sweep alone: each setting, in settings.csv's order
    assert [r["env_steps"] for r in at_first] == [2048, 2048]
    assert at_first[0]["iqm"] == pytest.approx(stats.iqm(returns(0, 0)))
    for argv, message in [
        ([f"{cli_sweep}:0"], "compare: 1 setting given"),
        ([f"{cli_sweep}:0", f"{cli_sweep}:7"], ":7: the sweep has no setting 7; its settings are 0, 1"),
        ([cli_sweep, f"{cli_sweep}:1"], "learning_rate=0.001 is listed twice"),
        ([cli_sweep, "--at", "100"], "--at 100: .* first evaluation is at 2,048 env steps"),
        ([cli_sweep, "--at", "0"], "--at: env steps must be positive; got 0"),
        ([cli_sweep, "--metric", "train/nope"], "no evaluation of 'train/nope' .* metrics.jsonl column"),
        ([cli_sweep, "--threshold", "nan"], "--threshold: must be a finite number; got nan"),
        ([cli_sweep, "--out", str(out / "compare.md")], "is a file; compare writes"),
        ([str(tmp_path / "none"), cli_sweep], "none: no such directory"),
        ([str(tmp_path), cli_sweep], "no sweep.yaml there; not an rlx sweep directory"),
        ([f"{cli_sweep}:x"], "'x' after ':' is not a setting number"),
    ]:
        assert cli.main(["compare", *argv]) == cli.EXIT_CONFIG_ERROR, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(message, err), (argv, err)


def test_a_sweep_run_is_an_ordinary_run_directory(cli_sweep, capsys):
    assert cli.main(["eval", os.path.join(cli_sweep, "runs", "h01-seed3"), "--episodes", "2"]) == 0
    assert "eval/episode_return=" in capsys.readouterr().out


def test_rlx_eval_of_a_sweep_evaluates_every_run_and_each_setting(cli_sweep, capsys):
    assert cli.main(["eval", cli_sweep, "--render", "x.html"]) == cli.EXIT_CONFIG_ERROR
    assert cli.main(["eval", cli_sweep, "--episodes", "3", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    runs = {line.split(" | ")[0][2:]: line.split(" | ") for line in out.splitlines() if line.startswith("| h")}
    assert len(runs) == 16 and {cells[1] for cells in runs.values()} == {"evaluated"}
    experiment, state, _ = evaluate.load(os.path.join(cli_sweep, "runs", "h01-seed3"), 3)
    alone = experiment.evaluate(state, 5)["eval/episode_return"]  # as rlx eval RUN_DIR --episodes 3 --seed 5
    assert float(runs["h01-seed3"][3]) == pytest.approx(alone, rel=1e-3)
    settings = [line for line in out.splitlines() if line.startswith("| 0 | ")]
    assert len(settings) == 2 and all(" | 8 | 0 | " in line for line in settings)  # 8 seeds, none missing


def test_rlx_eval_of_a_sweep_reports_what_it_cannot_evaluate_and_evaluates_an_edited_run_alone(
    cli_sweep, tmp_path, capsys
):
    """A group's runs are evaluated in one vmapped call; a run without checkpoints is listed, not fatal, and a run
    whose config.yaml was edited away from the sweep's is evaluated alone (as ``rlx eval RUN_DIR``) and not counted
    in its setting's IQM (it is not the run the sweep says)."""
    together, _ = evaluate.evaluate_sweep(cli_sweep, 3, 5)
    copy = tmp_path / "sweep"
    shutil.copytree(cli_sweep, copy)
    shutil.rmtree(copy / "runs" / "h00-seed1" / "checkpoints")
    config_path = copy / "runs" / "h00-seed2" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["agent"]["learning_rate"] = 0.5  # a training field: not the sweep's run any more
    config_path.write_text(yaml.safe_dump(config))
    summary_path = copy / "runs" / "h01-seed4" / "summary.json"  # as if it had diverged after its checkpoints
    summary_path.write_text(json.dumps({**json.loads(summary_path.read_text()), "status": "diverged"}))
    summary_path = copy / "runs" / "h01-seed5" / "summary.json"  # as if it had diverged before its first checkpoint
    summary_path.write_text(json.dumps({**json.loads(summary_path.read_text()), "status": "diverged"}))
    shutil.rmtree(copy / "runs" / "h01-seed5" / "checkpoints")
    rows, table = evaluate.evaluate_sweep(str(copy), 3, 5)
    assert "h00-seed2/config.yaml differs from the config checkpoint" in capsys.readouterr().err  # a warning
    by_run = {r["run"]: r for r in rows}
    assert (
        by_run["h00-seed1"]["status"].startswith("not evaluated (") and "eval/episode_return" not in by_run["h00-seed1"]
    )
    before = {r["run"]: r for r in together}
    assert by_run["h00-seed2"]["status"] == (
        "not counted: its config.yaml differs from sweep.yaml (agent.learning_rate: 0.5 in config.yaml, 0.0003 in sweep.yaml)"
    )
    assert by_run["h01-seed3"]["status"] == "evaluated"
    for name in ("h00-seed2", "h01-seed3"):
        assert by_run[name]["eval/episode_return"] == pytest.approx(before[name]["eval/episode_return"], rel=1e-3)
    assert by_run["h01-seed4"]["status"] == (
        "not counted: diverged in training; evaluated at its last finite checkpoint"
    )  # its last checkpoint is from before the divergence: it was counted as a result (found by a probe)
    assert by_run["h01-seed5"]["status"] == "diverged"  # was "not evaluated (...: no checkpoint yet ...)"
    assert [(r["seeds"], r["missing"]) for r in table] == [(8, 2), (8, 2)]  # the edited run is not counted
    curves = plot.curves(str(copy))  # nor the diverged ones in the plots (final.png drew its old value)
    assert [(d["seeds"], d["diverged"], d["final"].size) for d in curves.values()] == [(8, 0, 8), (6, 2, 6)]
    with pytest.raises(ConfigError, match="--episodes: must be > 0; got 0"):
        evaluate.evaluate_sweep(cli_sweep, 0)


def test_seed_in_sweep_matches_the_same_seed_trained_alone(cli_sweep):
    """Init, keys and hyperparameters are routed exactly: the initial states are bitwise equal. After
    training, parameters agree to float32 round-off, not bitwise: XLA:CPU runs the gradient matmuls of a
    vmapped batch with batch-size-dependent kernels, so their sums associate differently (rollouts, GAE and
    observation statistics of one iteration are bitwise equal; the first difference is in the update)."""
    spec = sweep.load_spec(cli_sweep)
    group = sweep.expand(spec)[0]
    experiment = driver.Experiment(group.config)
    keys = np.stack([np.asarray(jax.random.fold_in(jax.random.PRNGKey(m.seed), 0)) for m in group.members])
    traced = traced_values(group)  # the sweep's own per-run values (a field null in every run left out)
    stacked = jax.jit(jax.vmap(experiment.init_fn))(keys, traced)
    for index in (3, 13):
        member = group.members[index]
        alone_init = driver.Experiment(member.config).init()
        assert tree_equal(alone_init, jax.tree.map(lambda x, i=index: x[i], stacked))
        alone = driver.train(member.config, None, progress=False).state
        in_sweep = final_params(os.path.join(cli_sweep, "runs", member.name))
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(in_sweep), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_stopped_sweep_resumes_to_the_same_result(cli_sweep, tmp_path, capsys):
    spec = sweep.load_spec(cli_sweep)
    out = str(tmp_path / "split")
    first = sweep.run(spec, out, progress=False, stop_after_chunks=1)
    assert first.status == "stopped" and {r["status"] for r in first.runs} == {"stopped"}
    damaged, ahead = str(tmp_path / "damaged"), str(tmp_path / "ahead")
    shutil.copytree(out, damaged)
    shutil.copytree(out, ahead)
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == 0
    for name in ("h00-seed0", "h01-seed7"):
        assert tree_equal(
            final_params(os.path.join(out, "runs", name)), final_params(os.path.join(cli_sweep, "runs", name))
        )
    assert json.load(open(os.path.join(out, "summary.json")))["status"] == "completed"

    # Every checkpoint damaged: an error, as for a run; it restarted the group from scratch.
    for run in os.listdir(os.path.join(damaged, "runs")):
        os.remove(os.path.join(damaged, "runs", run, "checkpoints", "1", "meta", "metadata"))
    with pytest.raises(ConfigError, match="no valid checkpoint for group 0 in .*runs: none of the 1 chunks"):
        sweep.resume(damaged, progress=False)
    assert not os.path.exists(os.path.join(damaged, "runs", "h00-seed0", "damaged_checkpoints"))

    # One run a checkpoint ahead of the others (a kill between their saves): set aside, and not called damaged.
    checkpoints = os.path.join(ahead, "runs", "h00-seed0", "checkpoints")
    shutil.copytree(os.path.join(checkpoints, "1"), os.path.join(checkpoints, "2"))
    capsys.readouterr()
    sweep.resume(ahead, progress=False)
    err = capsys.readouterr().err
    assert f"rlx: warning: moved checkpoint {checkpoints}/2 to " in err and "damaged checkpoint" not in err
    assert ": newer than chunk 1, the newest that every run of group 0 restores" in err
    assert tree_equal(
        final_params(os.path.join(ahead, "runs", "h00-seed0")), final_params(os.path.join(out, "runs", "h00-seed0"))
    )


def test_a_sweep_stopped_in_its_first_group_lists_the_later_groups_runs_as_not_started(tmp_path, monkeypatch):
    """The tables, the result and rlx eval listed only the started group's runs (``runs=2`` for a sweep of 4), and
    rlx eval called the others "not an rlx run directory" (found by a probe)."""
    base = tiny_ppo(total_env_steps=512, num_chunks=2)
    spec = sweep.spec_from_dict({"config": base, "seeds": 2, "groups": {"agent.policy.hidden": [[8], [6]]}})
    out = str(tmp_path / "stopped")
    result = sweep.run(spec, out, progress=False, stop_after_chunks=1)
    assert [(r["run"], r["status"], r["env_steps"]) for r in result.runs] == [
        ("h00-seed0", "stopped", 256),
        ("h00-seed1", "stopped", 256),
        ("h01-seed0", "not started", 0),
        ("h01-seed1", "not started", 0),
    ]
    assert [(r["group"], r["seeds"], r["missing"]) for r in result.table] == [(0, 2, 0), (1, 2, 2)]
    with open(os.path.join(out, "summary.csv")) as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["stopped", "stopped", "not started", "not started"]
    runs, table = evaluate.evaluate_sweep(out, 2)
    assert [r["status"] for r in runs] == ["evaluated", "evaluated", "not started", "not started"]
    assert [(r["group"], r["missing"]) for r in table] == [(0, 0), (1, 2)]
    resumed = sweep.resume(out, progress=False)
    assert [r["status"] for r in resumed.runs] == ["completed"] * 4 and all(r["missing"] == 0 for r in resumed.table)

    # Ctrl-C in the second group: the sweep's tables are written as a stopped sweep's (there were none; a probe)
    run_group = sweep.runner.run_group

    def interrupt_group_1(group, *args, **kwargs):
        if group.index == 1:
            os.makedirs(os.path.join(args[0], "runs", "h01-seed0"))  # as if interrupted while making its state
            raise KeyboardInterrupt
        return run_group(group, *args, **kwargs)

    monkeypatch.setattr(sweep.runner, "run_group", interrupt_group_1)
    interrupted = str(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        sweep.run(spec, interrupted, progress=False)
    summary = json.load(open(os.path.join(interrupted, "summary.json")))
    assert summary["status"] == "interrupted" and summary["compile_seconds"] >= 0
    assert [(r["run"], r["status"]) for r in summary["runs"]] == [
        ("h00-seed0", "completed"),
        ("h00-seed1", "completed"),
        ("h01-seed0", "interrupted"),
        ("h01-seed1", "not started"),
    ]
    with open(os.path.join(interrupted, "settings.csv")) as f:
        assert [(r["group"], r["missing"]) for r in csv.DictReader(f)] == [("0", "0"), ("1", "2")]


def test_a_sweep_with_a_diverged_run_resumes_the_others_where_they_stopped(tmp_path):
    """A run that diverged has no checkpoints; the group's resume took the chunk all runs shared (none), set the
    others' checkpoints aside, cut their logs and started over, on every resume (found by a probe)."""
    base = tiny_ppo(total_env_steps=1024, num_chunks=4)
    spec = sweep.spec_from_dict({"config": base, "grid": {"agent.reward_scaling": [1.0, 1e30]}})
    whole = sweep.run(spec, str(tmp_path / "whole"), progress=False)
    assert [r["status"] for r in whole.runs] == ["completed", "diverged"]
    out = str(tmp_path / "split")
    assert sweep.run(spec, out, progress=False, stop_after_chunks=2).status == "stopped"
    healthy, bad = (os.path.join(out, "runs", f"h0{h}-seed0") for h in range(2))
    assert sorted(os.listdir(os.path.join(healthy, "checkpoints"))) == ["1", "2"]
    assert not os.listdir(os.path.join(bad, "checkpoints"))
    bad_files = {
        f: open(os.path.join(bad, f), "rb").read() for f in os.listdir(bad) if os.path.isfile(os.path.join(bad, f))
    }

    resumed = sweep.resume(out, progress=False)
    assert [r["status"] for r in resumed.runs] == ["completed", "diverged"]
    assert not os.path.exists(os.path.join(healthy, "damaged_checkpoints"))  # nothing set aside

    def logged(run_dir):  # the rows without their timing
        rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
        return [{k: v for k, v in r.items() if k != "steps_per_second"} for r in rows]

    assert logged(healthy) == logged(os.path.join(tmp_path, "whole", "runs", "h00-seed0"))
    assert tree_equal(final_params(healthy), final_params(os.path.join(tmp_path, "whole", "runs", "h00-seed0")))
    after = {
        f: open(os.path.join(bad, f), "rb").read() for f in os.listdir(bad) if os.path.isfile(os.path.join(bad, f))
    }
    assert after == bad_files  # the diverged run's files as they were (summary.json included)
    assert json.load(open(os.path.join(bad, "summary.json")))["status"] == "diverged"

    # A healthy run's checkpoints removed while the others have several: an error, not a fresh start.
    other = str(tmp_path / "other")
    spec = sweep.spec_from_dict({"config": base, "seeds": 2})
    sweep.run(spec, other, progress=False, stop_after_chunks=2)
    shutil.rmtree(os.path.join(other, "runs", "h00-seed1", "checkpoints"))
    with pytest.raises(ConfigError, match="h00-seed1 lack the ones the others have"):
        sweep.resume(other, progress=False)
    assert sorted(os.listdir(os.path.join(other, "runs", "h00-seed0", "checkpoints"))) == ["1", "2"]


def test_a_sweep_with_a_run_missing_or_resumed_alone_or_a_broken_summary_is_a_one_line_error(
    cli_sweep, tmp_path, capsys
):
    """A sweep missing a run's folder restarted from scratch and called the others' checkpoints damaged; one
    run resumed alone left its runs at different chunks; a broken run summary.json was a traceback."""
    out = str(tmp_path / "broken")
    shutil.copytree(cli_sweep, out)
    with pytest.raises(
        ConfigError, match=f"--resume: {out}/runs/h00-seed0 is a run of the sweep {out}; resume the sweep"
    ):
        driver.resume(os.path.join(out, "runs", "h00-seed0"), progress=False)
    os.rename(os.path.join(out, "runs", "h01-seed3"), os.path.join(tmp_path, "aside"))
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == cli.EXIT_CONFIG_ERROR
    assert "group 0 has checkpoints but no folder for its runs h01-seed3 (removed or renamed" in capsys.readouterr().err
    os.rename(os.path.join(tmp_path, "aside"), os.path.join(out, "runs", "h01-seed3"))
    open(os.path.join(out, "runs", "h00-seed1", "summary.json"), "w").write("{x")
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == cli.EXIT_CONFIG_ERROR
    assert "h00-seed1/summary.json: cannot be read (JSONDecodeError); restore or remove it" in capsys.readouterr().err
    assert not any(
        os.path.exists(os.path.join(out, "runs", r, "damaged_checkpoints"))
        for r in os.listdir(os.path.join(out, "runs"))
    )


def test_axes_that_would_merge_overlap_or_explode_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    """A traced field null in some runs failed only after --overwrite had removed the old sweep (and --dry-run
    passed it); agent.policy beside agent.policy.hidden trained each setting twice and one axis never; a
    relative base was read from the current directory; 10^8 random draws took gigabytes before any message."""
    base = {"algo": "ppo", "total_env_steps": 2048, "agent": {"num_envs": 4, "unroll_length": 32}}
    spec = sweep.spec_from_dict({"config": base, "grid": {"agent.max_grad_norm": [0.5, None]}})
    with pytest.raises(ConfigError, match="agent.max_grad_norm: is null \\(off\\) in some runs"):
        sweep.checked_experiments(sweep.expand(spec))  # what --dry-run and a sweep check before writing
    overlapping = {"agent.policy": [{"hidden": [32]}, {"hidden": [16]}], "agent.policy.hidden": [[8], [4]]}
    with pytest.raises(ConfigError, match="agent.policy.hidden: is inside agent.policy, which is also a sweep axis"):
        sweep.spec_from_dict({"config": base, "groups": overlapping})
    with pytest.raises(ConfigError, match="sweep: 100,000,000 runs \\(seeds x settings\\); at most 1,048,576"):
        sweep.spec_from_dict(
            {"config": base, "random": {"agent.gamma": {"low": 0.9, "high": 0.99}}, "num_random": 10**8}
        )
    with pytest.raises(ConfigError, match="grid.agent.gamma: a value is missing after the last ','"):
        sweep.spec_from_dict({"config": base, "grid": {"agent.gamma": "0.99,"}})
    (tmp_path / "mybase.yaml").write_text("extends: ppo_cartpole\n")
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="base mybase.yaml: no such file next to the spec \\(specs\\)"):
        sweep.spec_from_dict({"base": "mybase.yaml"}, base_dir="specs")
    assert sweep.spec_from_dict({"base": "mybase.yaml"}, base_dir=".").config["algo"] == "ppo"


def test_plot_keeps_settings_whose_rounded_labels_coincide(monkeypatch):
    """Labels round to 3 digits: 3e-4 and 3.0004e-4 had one label and one setting silently replaced the other."""
    spec = sweep.spec_from_dict(
        {"config": {"algo": "ppo"}, "grid": {"agent.learning_rate": [3e-4, 3.0004e-4, 1e-3]}, "seeds": 1}
    )
    monkeypatch.setattr(sweep, "load_spec", lambda *a, **k: spec)
    monkeypatch.setattr(plot, "read_metrics", lambda d: [{"chunk": 1, "env_steps": 1, "eval/episode_return": 1.0}])
    assert list(plot.curves("unused")) == [
        "learning_rate=0.0003 (setting 0)",
        "learning_rate=0.0003 (setting 1)",
        "learning_rate=0.001",
    ]


def test_plot_names_a_grouped_env_and_counts_runs_without_values(monkeypatch):
    """A sweep over env.name: the title named the base's env only (blank with none: "ppo on "), labels read
    "name=...", and a setting whose runs had not started was drawn as "(2 seeds)" (found by a probe)."""
    spec = sweep.spec_from_dict(
        {"config": {"algo": "ppo"}, "groups": {"env.name": ["gymnax/CartPole-v1", "gymnax/Acrobot-v1"]}, "seeds": 2}
    )
    monkeypatch.setattr(sweep, "load_spec", lambda *a, **k: spec)
    row = {"chunk": 1, "env_steps": 1, "eval/episode_return": 1.0}
    monkeypatch.setattr(plot, "read_metrics", lambda d: [row] if "h00" in d else [])  # the second group not started
    found = plot.curves("unused")
    assert {label: (d["seeds"], d["missing"]) for label, d in found.items()} == {
        "env=gymnax/CartPole-v1": (2, 0),
        "env=gymnax/Acrobot-v1": (2, 2),
    }
    assert plot.sweep_title(sweep.expand(spec)) == "ppo on gymnax/CartPole-v1, gymnax/Acrobot-v1"
    assert plot.setting_label({"agent.policy.hidden": (64, 64), "env.name": "x"}) == "hidden=(64, 64), env=x"
    monkeypatch.setattr(plot, "read_metrics", lambda d: [])  # no row yet: the column hint only for another metric
    with pytest.raises(ConfigError, match=r"^unused: no run has logged 'eval/episode_return' yet$"):
        plot.plot_sweep("unused")
    with pytest.raises(ConfigError, match=r"'train/loss' yet \(is it a metrics.jsonl column\?\)$"):
        plot.plot_sweep("unused", metric="train/loss")


def test_plots_of_many_settings_stay_readable(monkeypatch, tmp_path):
    """36 settings: the legend covered curves.png (7 of 36 entries visible) with tab10's colours repeating, and
    final.png was 1.2 inches per setting (66,480 px wide at 460); each run evaluated once drew no curve at all
    (found by a probe). Now the 10 best by final IQM are coloured and named, the rest grey; final.png shows the
    20 best; points are marked on short curves."""
    import matplotlib.figure

    rates = [float(r) for r in np.geomspace(1e-5, 1e-2, 36)]
    spec = sweep.spec_from_dict({"config": {"algo": "ppo"}, "grid": {"agent.learning_rate": rates}, "seeds": 1})
    monkeypatch.setattr(sweep, "load_spec", lambda *a, **k: spec)
    score = {member.name: member.setting for group in sweep.expand(spec) for member in group.members}
    rows = lambda d: [{"chunk": 1, "env_steps": 64, "eval/episode_return": float(score[os.path.basename(d)])}]  # noqa: E731
    monkeypatch.setattr(plot, "read_metrics", rows)
    saved = {}
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **k: saved.setdefault(path, fig))
    plot.plot_sweep("unused", str(tmp_path))
    curves, final = saved[str(tmp_path / "curves.png")], saved[str(tmp_path / "final.png")]
    legend = [text.get_text() for text in curves.axes[0].get_legend().get_texts()]
    assert legend[0] == "26 other settings (settings.csv)" and len(legend) == 11
    assert legend[1].startswith(plot.setting_label({"agent.learning_rate": rates[35]})) and legend[1].endswith(
        "(1 seed)"
    )
    assert all(line.get_marker() == "o" for line in curves.axes[0].get_lines() if len(line.get_xdata()) == 1)
    assert "the 10 best by final IQM in colour" in curves.axes[0].get_title()
    assert len(final.axes[0].patches) == plot.MAX_BARS and final.get_size_inches()[0] <= 1.2 * plot.MAX_BARS + 2
    assert "(the 20 best of 36 settings)" in final.axes[0].get_title()


def test_resuming_a_sweep_whose_sweep_yaml_was_edited_names_the_fields(cli_sweep, tmp_path, capsys):
    """The runs' checkpoints hold the configs they were trained with: an edited sweep.yaml restarted groups from
    scratch (other shapes) or resumed with the old traced values while the runs' config.yaml said the new."""
    out = str(tmp_path / "edited")
    shutil.copytree(cli_sweep, out)
    path = os.path.join(out, "sweep.yaml")
    spec = yaml.safe_load(open(path))
    spec["grid"]["agent.learning_rate"] = [3e-4, 2e-3]
    with open(path, "w") as f:
        yaml.safe_dump(spec, f)
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == cli.EXIT_CONFIG_ERROR
    assert (
        f"sweep.yaml differs from the config checkpoint {out}/runs/h01-seed0/checkpoints/2 was saved with "
        "(agent.learning_rate: 0.001 there, 0.002 here); a resume continues the run as it was trained"
    ) in capsys.readouterr().err


@pytest.fixture(scope="module")
def spec_file(cli_sweep, tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "sweep.yaml"
    data = yaml.safe_load(open(os.path.join(cli_sweep, "sweep.yaml")))
    path.write_text(yaml.safe_dump({**data, "seeds": 8}))
    return str(path)


def test_sharded_sweep_equals_unsharded_and_puts_a_quarter_of_the_runs_on_each_device(spec_file, tmp_path):
    out = tmp_path / "sharded.npz"
    env = {**subprocess_env(tmp_path / "cache"), "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), "sweep_worker.py"), spec_file, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(out)
    assert int(result["devices"]) == 4
    assert result["sharded_layout"].tolist() == [[0, 4, 0], [4, 8, 1], [8, 12, 2], [12, 16, 3]]
    assert result["single_layout"].tolist() == [[0, 16, 0]]
    assert result["padded_layout"].tolist() == [[0, 2, 0], [2, 4, 1], [4, 6, 2], [6, 8, 3]]  # 6 runs + 2 padding
    keys = sorted(k[len("single_") :] for k in result.files if k.startswith("single_p"))
    for key in keys:
        # Per-device batches of 4 runs vs one batch of 16: same float32 round-off caveat as above.
        np.testing.assert_allclose(result[f"sharded_{key}"], result[f"single_{key}"], rtol=1e-4, atol=1e-5)
        assert result[f"padded_{key}"].shape[0] == 6


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_process_sweep_with_jax_distributed_matches_the_single_process_sweep(cli_sweep, tmp_path):
    out = str(tmp_path / "multi")
    port = free_port()
    env = {
        **subprocess_env(tmp_path / "cache"),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
        "RLX_NUM_PROCESSES": "2",
    }
    args = [sys.executable, "-m", "rlx.cli", *SWEEP_ARGS, "--out", out]
    processes = [
        subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "RLX_PROCESS_ID": str(i)}
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in processes]
    for p, (_, stderr) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    assert "status=completed runs=16" in outputs[0][0] and "status=" not in outputs[1][0]  # process 0 reports
    table = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert len(table) == 16
    for name in ("h00-seed1", "h01-seed6"):  # one run from each process's half of the run axis
        for a, b in zip(
            jax.tree.leaves(final_params(os.path.join(out, "runs", name))),
            jax.tree.leaves(final_params(os.path.join(cli_sweep, "runs", name))),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_processes_given_different_sweeps_stop_in_one_line_before_training(tmp_path):
    """Process 1 given another grid trained its half of the runs with its values under process 0's labels; another
    seed count aborted in the collectives with a C++ trace (found by a probe). Likewise a check that fails on
    process 0 alone (its --out refused) left process 1 waiting in a collective until a C++ abort."""
    out = str(tmp_path / "differ")
    env = {
        **subprocess_env(tmp_path / "cache"),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "RLX_NUM_PROCESSES": "2",
    }
    base = [sys.executable, "-m", "rlx.cli", "sweep", "ppo", "--no-preset", "--steps", "512", "--seeds", "2"]

    def both(grids):
        port = free_port()
        processes = [
            subprocess.Popen(
                [*base, "--grid", grid, "--out", out, "--quiet"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**env, "RLX_PROCESS_ID": str(i), "JAX_COORDINATOR_ADDRESS": f"localhost:{port}"},
            )
            for i, grid in enumerate(grids)
        ]
        outputs = [p.communicate(timeout=600) for p in processes]
        assert [p.returncode for p in processes] == [cli.EXIT_CONFIG_ERROR] * 2, [e[-3000:] for _, e in outputs]
        return [stderr.splitlines()[-1] for _, stderr in outputs]

    for last in both(["agent.learning_rate=3e-4,1e-3", "agent.learning_rate=3e-4,1e-2"]):
        assert last == (
            "rlx: config error: --coordinator: process(es) 1 of 2 were given another sweep or other options "
            "(--stop-after-chunks, --devices, --resume, --overwrite) than process 0; start every process with the "
            "same command"
        )
    assert not os.path.exists(os.path.join(out, "runs"))  # nothing trained
    os.makedirs(out)
    open(os.path.join(out, "summary.json"), "w").write("{}")  # not a sweep's: process 0 refuses to write over it
    first, second = both(["agent.learning_rate=3e-4,1e-3"] * 2)
    assert first.endswith("has summary.json, which a sweep would write over; choose another --out")
    assert second == (
        "rlx: config error: --coordinator: process(es) 0 stopped before training (see their message); nothing was "
        "trained"
    )


# -- spec validation and expansion (no compilation) ---------------------------------------------------


def spec(**axes):
    return sweep.spec_from_dict({"config": {"algo": "ppo", "env": {"name": "gymnax/CartPole-v1"}}, **axes})


def test_a_static_field_as_a_vmapped_axis_is_an_error_naming_the_traced_fields():
    with pytest.raises(ConfigError) as error:
        spec(grid={"agent.num_envs": [8, 16]})
    message = str(error.value)
    assert "grid.agent.num_envs: is static" in message and "agent.learning_rate" in message
    assert "agent.entropy_coef" in message and "groups" in message and "\n" not in message
    with pytest.raises(ConfigError, match="random.total_env_steps: is static"):
        spec(random={"total_env_steps": {"low": 1, "high": 2}}, num_random=2)
    with pytest.raises(ConfigError, match="grid.agent.learning_rat: is not a traced field"):
        spec(grid={"agent.learning_rat": [1e-3]})


@pytest.mark.parametrize(
    "axes, message",
    [
        ({"seeds": 0}, "seeds: must be > 0"),
        ({"seeds": [1, 1]}, "seeds: repeated seed"),
        ({"grid": {"agent.learning_rate": []}}, "grid.agent.learning_rate: expected a non-empty list"),
        ({"grid": {"agent.learning_rate": [-1.0]}}, "agent.learning_rate: must be > 0"),
        ({"random": {"agent.gamma": {"low": 0.9, "high": 0.99}}}, "num_random: must be > 0"),
        ({"random": {"agent.gamma": {"low": 0.0, "high": 0.99, "log": True}}, "num_random": 2}, "low > 0 for log"),
        ({"groups": {"seed": [1, 2]}}, "groups.seed: cannot be swept"),
        ({"groups": {"agent.num_envs": [0]}}, "agent.num_envs: must be > 0"),
        ({"grid": {"agent.gamma": [0.9]}, "groups": {"agent.gamma": [0.9]}}, "appears on two sweep axes"),
        ({"colour": 1}, "sweep.colour: unknown key"),
        ({"random_seed": "abc"}, "random_seed: expected an integer >= 0"),
        ({"num_random": -1}, "num_random: expected an integer >= 0"),
        # tracebacks, silent misreadings or a MemoryError until 2026-12-04
        ({"num_random": True, "random": {"agent.gamma": {"low": 0.9, "high": 0.99}}}, "num_random: expected an"),
        (
            {"random": {"agent.gamma": {"low": 0.9, "high": 0.99, "log": "false"}}, "num_random": 2},
            "gamma.log: expected",
        ),
        ({"grid": {1: [1, 2]}}, "grid: expected a mapping of field paths to values"),
        ({"base": 5}, "base: expected a preset name or a path, got 5"),
        ({"groups": {"agent.num_envs": [16, 16]}}, "groups.agent.num_envs: value 16 given twice"),
        ({"seeds": 2**32}, "seeds: must be > 0 and <= 1,048,576"),
    ],
)
def test_bad_sweep_specs_fail_with_one_line_naming_the_field(axes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        sweep.expand(spec(**axes))
    for data, said in (({"config": [1, 2]}, "config: expected a mapping"), ([1], "sweep: expected a mapping")):
        with pytest.raises(ConfigError, match=said):
            sweep.spec_from_dict(data)


def test_python_api_misuse_and_a_bad_run_in_a_seed_only_sweep_are_one_line_errors():
    """``sweep.run({...})`` was an AttributeError and ``build_config("ppo")`` a ValueError; a seed-only sweep's bad
    run was named ``sweep run {}``."""
    with pytest.raises(ConfigError, match=r"^spec: expected a SweepSpec \(rlx.sweep.spec_from_dict"):
        sweep.run({"seeds": 2}, None)
    with pytest.raises(ConfigError, match="^config: expected a mapping of run-config fields"):
        driver.build_config("ppo")
    with pytest.raises(ConfigError, match=r"^sweep run base \(seed 0\): eval_episodes: must be > 0"):
        sweep.expand(sweep.spec_from_dict({"config": {"eval_episodes": 0}, "seeds": 2}))


def test_grid_random_and_groups_expand_into_compiled_groups_of_vmapped_runs():
    s = spec(
        seeds=[3, 5],
        grid={"agent.learning_rate": [1e-4, 1e-3]},
        num_random=3,
        random_seed=7,
        random={"agent.entropy_coef": {"low": 1e-4, "high": 1e-1, "log": True}, "agent.gamma": "0.9:0.99"},
        groups={"agent.num_envs": [8, 16]},
    )
    groups = sweep.expand(s)
    assert [g.config.agent.num_envs for g in groups] == [8, 16]
    assert all(len(g.members) == 2 * 3 * 2 for g in groups)  # grid x random draws x seeds
    first = groups[0].members
    assert [m.seed for m in first[:4]] == [3, 5, 3, 5]
    entropy = [m.config.agent.entropy_coef for m in first[::2]]
    assert all(1e-4 <= e <= 1e-1 for e in entropy) and len(set(entropy)) == 3  # 3 draws, reused per grid point
    assert entropy[:3] == entropy[3:]
    assert all(0.9 <= m.config.agent.gamma <= 0.99 for m in first)
    assert [m.config.agent.entropy_coef for m in groups[1].members] == [m.config.agent.entropy_coef for m in first]
    assert sweep.traced_settings(s) == sweep.traced_settings(s)  # same random_seed, same draws
    names = [m.name for g in groups for m in g.members]
    assert len(set(names)) == len(names) and names[0] == "h00-seed3" and names[-1] == "h11-seed5"


def test_cli_flags_become_a_sweep_spec():
    args = cli._parser().parse_args(
        [
            "sweep",
            "ppo",
            "--env",
            "gymnax/CartPole-v1",
            "--seeds",
            "0,4",
            "--grid",
            "agent.learning_rate=3e-4,1e-3",
            "--random",
            "agent.entropy_coef=1e-4:1e-1:log",
            "--num-random",
            "2",
            "--group",
            "agent.policy.hidden=[8],[16,16]",
            "--set",
            "agent.gamma=0.98",
        ]
    )
    data, _ = cli.sweep_spec_data(args)
    s = sweep.spec_from_dict(data)
    assert s.seeds == (0, 4) and s.grid == {"agent.learning_rate": (3e-4, 1e-3)}
    assert s.random["agent.entropy_coef"] == sweep.RandomAxis(1e-4, 1e-1, True) and s.num_random == 2
    assert s.groups == {"agent.policy.hidden": ([8], [16, 16])} and s.config["agent"]["gamma"] == 0.98
    assert [g.config.agent.policy.hidden for g in sweep.expand(s)] == [(8,), (16, 16)]


def test_example_sweep_spec_expands():
    path = os.path.join(CONFIGS, "sweeps", "ppo_cartpole_lr_entropy.yaml")
    groups = sweep.expand(sweep.spec_from_dict(load_yaml(path), os.path.dirname(path)))
    assert [len(g.members) for g in groups] == [96, 96]
    assert [g.config.agent.policy.hidden for g in groups] == [(64, 64), (128, 128)]
    path = os.path.join(CONFIGS, "sweeps", "ppo_cartpole_pbt.yaml")
    spec = sweep.spec_from_dict(load_yaml(path), os.path.dirname(path))
    groups = sweep.expand(spec)
    assert [len(g.members) for g in groups] == [16] and spec.pbt == sweep.PBTSpec(("agent.learning_rate",))
    sweep.checked_experiments(groups, population=spec.pbt)  # 4 of 16 replaced; every chunk evaluates


def test_dry_run_lists_the_runs_and_their_groups_and_trains_nothing(capsys, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("--dry-run must not train")

    monkeypatch.setattr(sweep, "run", never)
    argv = ["sweep", "--config", "dqn_cartpole", "--seeds", "2", "--out", str(tmp_path / "out"), "--dry-run"]
    argv += ["--grid", "agent.learning_rate=1e-4,3e-4", "--group", "agent.batch_size=64,128"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| run | group | setting | seed | agent.batch_size | agent.learning_rate |"
    assert out[2] == "| h00-seed0 | 0 | 0 | 0 | 64 | 0.0001 |" and out[9] == "| h03-seed1 | 1 | 3 | 1 | 128 | 0.0003 |"
    assert out[10].startswith("rlx: 8 runs in 2 compiled group(s); dqn on gymnax/CartPole-v1, 500,000 env steps")
    assert not os.path.exists(tmp_path / "out")
    assert cli.main([*argv, "--set", "agent.num_envs=0"]) == cli.EXIT_CONFIG_ERROR  # validated all the same
    assert "agent.num_envs" in capsys.readouterr().err


def test_a_sweep_says_when_its_budget_is_rounded_up_to_whole_iterations(capsys, monkeypatch):
    """rlx train prints the note; a sweep trained the rounded budget without a word."""
    monkeypatch.setattr(sweep.runner, "run_group", lambda *args, **kwargs: ([], None, "completed", []))
    data = {"config": {"algo": "ppo", "total_env_steps": 3000, "num_chunks": 1}, "seeds": 2}
    sweep.run(sweep.spec_from_dict(data), None, progress=False)
    assert capsys.readouterr().err == (
        "rlx: note: total_env_steps=3000 is not a multiple of the 2048 env steps per iteration; training 4096 env "
        "steps (2 iterations) instead\n"
    )
    sweep.run(sweep.spec_from_dict({**data, "config": {**data["config"], "total_env_steps": 4096}}), None)
    assert capsys.readouterr().err == ""
    dry = ["sweep", "ppo", "--no-preset", "--steps", "6144", "--set", "num_chunks=2", "--seeds", "2", "--dry-run"]
    assert cli.main(dry) == 0  # --dry-run says the notes too (3 iterations make 2 chunks, 2 + 1: none here)
    assert "rlx: note" not in capsys.readouterr().err
    assert cli.main([*dry[:-4], "num_chunks=4", *dry[-3:]]) == 0
    assert capsys.readouterr().err.startswith("rlx: note: num_chunks=4: the 3 iteration(s) split into 3 chunk(s) of 1")
    # a dry run of one process of a multi-process sweep checks without joining: it waited for the others (a probe)
    assert cli.main([*dry, "--coordinator", "localhost:9", "--num-processes", "2", "--process-id", "0"]) == 0
    assert cli.main([*dry, "--coordinator", "localhost:9", "--num-processes", "2", "--process-id", "2"]) == 2
    assert capsys.readouterr().err.endswith("rlx: config error: --process-id: must be in [0, 2), got 2\n")


def test_sweep_starts_from_the_preset_train_would_use(capsys, tmp_path):
    from rlx import presets

    def spec(*flags):
        data, base_dir = cli.sweep_spec_data(cli._parser().parse_args(["sweep", *flags]))
        return sweep.spec_from_dict(data, base_dir)

    tuned = spec("sac", "--env", "gymnax/Pendulum-v1", "--seeds", "2")
    assert tuned.config == {**presets.load("sac_pendulum"), "algo": "sac", "env": {"name": "gymnax/Pendulum-v1"}}
    assert spec("sac", "--env", "gymnax/Pendulum-v1", "--no-preset").config["algo"] == "sac"
    assert "total_env_steps" not in spec("sac", "--env", "gymnax/Pendulum-v1", "--no-preset").config
    kept = spec("ppo", "--env", "brax/inverted_pendulum?backend=generalized").config["env"]
    assert kept == {"name": "brax/inverted_pendulum", "backend": "generalized", "episode_length": 1000}
    (tmp_path / "spec.yaml").write_text("config: {algo: sac, env: {name: gymnax/Pendulum-v1}}\n")
    assert "total_env_steps" not in spec("--spec", str(tmp_path / "spec.yaml")).config  # a spec file says it all
    assert cli.main(["sweep", "sac", "--env", "gymnax/Pendulum-v1", "--seeds", "2", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "rlx: using preset sac_pendulum for sac on gymnax/Pendulum-v1 (12,000 env steps" in captured.err
    assert "sac on gymnax/Pendulum-v1, 12,000 env steps each" in captured.out
    assert cli.main(["sweep", "dqn", "--config", "ddpg_hopper", "--dry-run"]) == cli.EXIT_CONFIG_ERROR  # as train
    assert "--config ddpg_hopper: is a preset for algo 'td3', not 'dqn'" in capsys.readouterr().err
    (tmp_path / "ppo_spec.yaml").write_text("base: ppo_cartpole\nseeds: 2\n")  # named a PPO field unknown to DQN
    assert cli.main(["sweep", "dqn", "--spec", str(tmp_path / "ppo_spec.yaml"), "--dry-run"]) == cli.EXIT_CONFIG_ERROR
    assert "base ppo_cartpole: is a preset for algo 'ppo', not 'dqn'" in capsys.readouterr().err
    # --set algo= against the algorithm named: rlx train ppo --set algo=sac trained SAC without a word (a probe)
    for argv in (["train", "ppo", "--no-preset"], ["train", "--config", "ppo_cartpole"], ["sweep", "ppo"]):
        assert cli.main([*argv, "--set", "algo=sac", "--print-config" if argv[0] == "train" else "--dry-run"]) == 2
        assert capsys.readouterr().err == (
            "rlx: config error: --set algo=sac: the algorithm is 'ppo', named on the command line or by --config; "
            f"name the other instead (rlx {argv[0]} sac ...)\n"
        )
    assert cli.main(["train", "ppo", "--set", "algo=ppo", "--print-config"]) == 0  # the same one: fine
    (tmp_path / "mine.yaml").write_text("algo: dqn\n")  # no env: the defaults' (a traceback until the mend)
    assert cli.main(["sweep", "--config", str(tmp_path / "mine.yaml"), "--dry-run"]) == 0
    assert "dqn on gymnax/CartPole-v1" in capsys.readouterr().out
    grouped = ["--group", "env.name=gymnax/CartPole-v1,gymnax/Acrobot-v1", "--group", "agent.batch_size=32,64"]
    assert cli.main(["sweep", "--config", str(tmp_path / "mine.yaml"), *grouped, "--dry-run"]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]  # each group's env and budget (the first group's only before)
    assert summary.startswith("rlx: 4 runs in 4 compiled group(s); groups 0, 1: dqn on gymnax/CartPole-v1, ")
    assert "env steps each; groups 2, 3: dqn on gymnax/Acrobot-v1, " in summary
    assert cli.main(["sweep", "ppo", "--group", "total_env_steps=2000,4096", "--dry-run"]) == 0
    assert (
        "; group 0: ppo on gymnax/CartPole-v1, 2,048 env steps each (2,000 asked, rounded up to whole iterations); "
        "group 1: ppo on gymnax/CartPole-v1, 4,096 env steps each (rlx train"
    ) in capsys.readouterr().out
    assert cli.main(["sweep", "--resume", str(tmp_path), "--dry-run"]) == cli.EXIT_CONFIG_ERROR  # never trains
    assert "--resume: cannot be combined with --dry-run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [
        ["sac", "--env", "gymnax/Pendulum-v1"],
        ["ppo", "--env", "brax/inverted_pendulum"],
        ["--config", "sac_inverted_pendulum", "--env", "gymnax/Pendulum-v1"],  # the preset's env options go
        ["--config", "sac_inverted_pendulum", "--env", "brax/hopper?backend=generalized"],  # ... or merge
        ["td3", "--env", "gymnax/Pendulum-v1", "--no-preset", "--set", "agent.tau=0.01", "--steps", "4000"],
    ],
)
def test_a_sweep_run_has_the_config_of_the_same_train_command(flags):
    data, base_dir = cli.sweep_spec_data(cli._parser().parse_args(["sweep", *flags, "--seeds", "3,4"]))
    runs = [m for g in sweep.expand(sweep.spec_from_dict(data, base_dir)) for m in g.members]
    trained = driver.build_config(cli.resolve_train_config(cli._parser().parse_args(["train", *flags, "--seed", "4"])))
    assert [m.seed for m in runs] == [3, 4] and runs[1].config == trained


def test_cli_sweep_reports_a_static_axis_as_a_config_error(capsys):
    assert cli.main(["sweep", "ppo", "--grid", "agent.num_envs=8,16"]) == cli.EXIT_CONFIG_ERROR
    assert "grid.agent.num_envs: is static" in capsys.readouterr().err


def test_sweeping_a_field_training_never_reads_is_refused(capsys):
    """DQN's tau with hard target copies: the settings trained bitwise-identical runs, without a word (found by a
    probe). Read in another group: a warning naming the group where it is not."""
    dry = ["--env", "gymnax/CartPole-v1", "--seeds", "1", "--dry-run"]
    assert cli.main(["sweep", "dqn", *dry, "--grid", "agent.tau=0.1,0.9"]) == cli.EXIT_CONFIG_ERROR
    assert capsys.readouterr().err.endswith(
        "rlx: config error: agent.tau: swept, but training never reads it (read only with target_update: polyak; "
        "target_update is hard); its settings would train identical runs\n"
    )
    argv = [
        "sweep",
        "dqn",
        *dry,
        "--random",
        "agent.tau=0.1:0.9",
        "--num-random",
        "2",
        "--group",
        "agent.target_update=hard,polyak",
    ]
    assert cli.main(argv) == 0
    assert "rlx: warning: agent.tau is never read in group(s) 0 (read only with target_update: polyak" in (
        capsys.readouterr().err
    )
    fixed = ["--set", "agent.autotune_alpha=false"]
    argv = ["sweep", "sac", "--env", "gymnax/Pendulum-v1", "--seeds", "1", "--dry-run", *fixed]
    assert cli.main([*argv, "--grid", "agent.alpha_learning_rate=1e-4,1e-3"]) == cli.EXIT_CONFIG_ERROR
    assert "agent.alpha_learning_rate: swept, but training never reads it (read only with autotune_alpha: true" in (
        capsys.readouterr().err
    )
    assert cli.main([*argv, "--grid", "agent.initial_alpha=0.1,0.2"]) == 0  # the fixed temperature: read
    assert cli.main([*argv[:-2], "--grid", "agent.initial_alpha=0.1,0.2"]) == 0  # the learned one's start: read too
    # a static axis (one group per value) whose field the other settings leave unread: identical groups
    ppo = ["sweep", "ppo", "--env", "gymnax/Pendulum-v1", "--seeds", "1", "--dry-run"]
    components = ["--group", "agent.policy.num_components=2,4"]
    capsys.readouterr()
    assert cli.main([*ppo, *components]) == cli.EXIT_CONFIG_ERROR
    assert capsys.readouterr().err.endswith(
        "rlx: config error: agent.policy.num_components: swept, but training never reads it (read only with "
        "distribution: gaussian_mixture; distribution is gaussian); its settings would train identical runs\n"
    )
    assert cli.main([*ppo, "--group", "agent.policy.distribution=gaussian,gaussian_mixture", *components]) == 0
    assert "rlx: warning: agent.policy.num_components is never read in group(s) 0, 1 (read only with " in (
        capsys.readouterr().err
    )
    discrete = ["sweep", "ppo", "--seeds", "1", "--dry-run", "--group", "agent.policy.min_std=0.1,0.2"]
    assert cli.main(discrete) == cli.EXIT_CONFIG_ERROR  # on CartPole: it trained two identical groups (a probe)
    assert "agent.policy.min_std: swept, but training never reads it (gymnax/CartPole-v1 has discrete actions" in (
        capsys.readouterr().err
    )


def test_a_diverging_run_is_marked_and_the_others_finish(cli_sweep, tmp_path, capsys):
    data = yaml.safe_load(open(os.path.join(cli_sweep, "sweep.yaml")))
    spec = sweep.spec_from_dict({**data, "seeds": 1, "grid": {"agent.learning_rate": [1e-3, 1e18]}})
    out = str(tmp_path / "diverge")
    result = sweep.run(spec, out, progress=False)
    assert [r["status"] for r in result.runs] == ["completed", "diverged"]
    assert "run h01-seed0 diverged (non-finite" in capsys.readouterr().err
    diverged = os.path.join(out, "runs", "h01-seed0")
    assert json.load(open(os.path.join(diverged, "summary.json")))["status"] == "diverged"
    assert not os.path.exists(os.path.join(diverged, "checkpoints", "2"))  # files stop before the non-finite chunk
    settings = list(csv.DictReader(open(os.path.join(out, "settings.csv"))))
    assert [int(r["missing"]) for r in settings] == [0, 1]
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == 0  # nothing left: its final line counts the diverged
    assert "rlx: status=completed runs=2 diverged=1 compile_s=" in capsys.readouterr().out


def test_packaged_sweep_specs_are_found_from_any_directory(tmp_path, monkeypatch, capsys):
    """``--spec configs/sweeps/NAME.yaml`` (the README's form) and ``--spec NAME`` find the packaged sweep files from
    any directory, as ``--config configs/NAME.yaml`` finds presets; their relative ``base`` is the packaged
    preset."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", "--spec", "configs/sweeps/ppo_cartpole_lr_entropy.yaml", "--dry-run"]) == 0
    assert "in 2 compiled group(s); ppo on gymnax/CartPole-v1" in capsys.readouterr().out
    assert cli.main(["sweep", "--spec", "ppo_cartpole_pbt", "--dry-run"]) == 0
    assert "16 runs in 1 compiled group(s); ppo on gymnax/CartPole-v1" in capsys.readouterr().out
    assert not os.listdir(tmp_path)
