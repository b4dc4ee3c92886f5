"""Reproduction suites (``rlx bench``): the smoke tier runs, reports and resumes; its statistics recomputed from the
runs' metrics; the GPU tier's configs all build and a sample of its entries runs end to end at tiny sizes on CPU."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import yaml

from rlx import cli, compare, driver, repro, stats, sweep
from rlx.config import ConfigError
from rlx.metrics_log import read_metrics


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("smoke"))
    suite = repro.load_suite("smoke")
    return suite, out, repro.run_suite(suite, out)


def test_smoke_suite_reports_every_entry_with_statistics_from_its_runs(smoke):
    suite, out, rows = smoke
    assert [r["name"] for r in rows] == [e.name for e in suite.entries]
    for entry, row in zip(suite.entries, rows, strict=True):
        runs_dir = os.path.join(out, entry.name, "runs")
        metrics = [read_metrics(os.path.join(runs_dir, run)) for run in sorted(os.listdir(runs_dir))]
        assert len(metrics) == entry.seeds == row["seeds"] and row["status"] == "completed"
        finals = [m[-1]["eval/episode_return"] for m in metrics]
        assert row["per_seed"] == pytest.approx(finals)
        assert row["final_iqm"] == pytest.approx(stats.iqm(np.array(finals)))
        assert row["ci_low"] <= row["final_iqm"] <= row["ci_high"]
        steps = [r["env_steps"] for r in metrics[0] if "eval/episode_return" in r]
        curve = [stats.iqm(np.array([m[i]["eval/episode_return"] for m in metrics])) for i in range(len(steps))]
        half = [c for s, c in zip(steps, curve, strict=True) if s <= row["env_steps"] / 2]
        assert row["iqm_at_0.5"] == (pytest.approx(half[-1]) if half else None)
        if entry.threshold is not None:
            reached = [s for s, c in zip(steps, curve, strict=True) if c >= entry.threshold]
            assert row["steps_to_threshold"] == (reached[0] if reached else None)
        if entry.reference is not None:
            low, high = entry.reference["low"], entry.reference["high"]
            expected = "BELOW" if row["final_iqm"] < low else ("above" if row["final_iqm"] > high else "within")
            assert row["verdict"] == expected
        assert os.path.exists(os.path.join(out, entry.name, "curves.png"))
    report = open(os.path.join(out, "report.md")).read()
    assert all(f"| {e.name} |" in report for e in suite.entries) and "References:" in report
    assert "IQM at 1/4, 1/2, 3/4: the seeds' IQM at the last evaluation at or before that fraction" in report
    assert json.load(open(os.path.join(out, "report.json")))["rows"] == json.loads(json.dumps(rows))
    [against] = json.load(open(os.path.join(out, "report.json")))["comparisons"]  # dqn_cartpole's baseline: ppo
    expected = compare.compare([os.path.join(out, "ppo_cartpole"), os.path.join(out, "dqn_cartpole")])[1]
    assert (against["name"], against["baseline"], against["verdict"]) == (
        "dqn_cartpole",
        "ppo_cartpole",
        expected["verdict"],
    )
    assert against["difference"] == pytest.approx(list(expected["difference"]))
    assert against["p_improvement"] == pytest.approx(list(expected["p_improvement"]))
    assert "| dqn_cartpole | ppo_cartpole | " in report and "| P(entry > baseline) [95% CI] |" in report
    whole = compare.compare([out])  # the bench directory stands for its entries, in the report's order
    assert [r["label"] for r in whole] == [os.path.normpath(os.path.join(out, e.name)) for e in suite.entries]
    assert whole[1]["p_improvement"] == pytest.approx(list(expected["p_improvement"]))
    for found, row in zip(compare.read_entries([os.path.join(out, e.name) for e in suite.entries]), rows, strict=True):
        if row["iqm_at_0.5"] is None:  # rlx compare --at 50% is the report's "IQM at 1/2"
            with pytest.raises(ConfigError, match="--at 50%: .* first evaluation is at"):
                compare.scores(found, "eval/episode_return", "50%")
        else:
            assert stats.iqm(compare.scores(found, "eval/episode_return", "50%")[1]) == pytest.approx(row["iqm_at_0.5"])


def test_finished_entries_are_kept_when_a_suite_runs_again(smoke, monkeypatch, capsys):
    suite, out, rows = smoke

    def no_training(*args, **kwargs):
        raise AssertionError("a finished entry was trained again")

    monkeypatch.setattr(sweep, "run", no_training)
    # an interrupt while a finished entry's plots were drawn: drawn at the next run (they were lost for good)
    os.remove(os.path.join(out, rows[0]["name"], "final.png"))
    assert repro.run_suite(suite, out) == json.loads(json.dumps(rows))
    assert os.path.exists(os.path.join(out, rows[0]["name"], "final.png"))
    assert cli.main(["bench", "smoke", "--out", out, "--quiet"]) == 0
    assert "| ppo_cartpole |" in capsys.readouterr().out
    # --only B after A into one --out: the report keeps A's finished row (it was rewritten with B's alone) ...
    last = suite.entries[-1].name
    assert [r["name"] for r in repro.run_suite(suite, out, only=(last,))] == [last]
    assert json.load(open(os.path.join(out, "report.json")))["rows"] == json.loads(json.dumps(rows))
    assert all(f"| {e.name} |" in open(os.path.join(out, "report.md")).read() for e in suite.entries)
    # A suite file edited after the entry finished: its band, threshold and verdict are the file's now (the
    # saved row's were reported, until a probe found it), from the saved result and curve
    first = suite.entries[0]
    above = rows[0]["final_iqm"] + 1
    edited = dataclasses.replace(
        suite,
        entries=(
            dataclasses.replace(first, reference={"low": above, "high": above + 1, "source": "edited"}, threshold=1e9),
            *suite.entries[1:],
        ),
    )
    again = repro.run_suite(edited, out, only=(first.name,))[0]
    assert again["verdict"] == "BELOW" and again["steps_to_threshold"] is None and again["threshold"] == 1e9
    assert again["final_iqm"] == rows[0]["final_iqm"] and "| BELOW |" in open(os.path.join(out, "report.md")).read()
    repro.run_suite(suite, out)  # the report as it was
    # ... but not a result of other settings (a --tiny report leaves out the full-size entries)
    assert repro._with_earlier_entries(suite, out, [], tiny=True) == []
    with pytest.raises(ConfigError, match="holds a sweep with other settings than entry ppo_cartpole"):
        repro.run_suite(suite, out, tiny=True)  # reported the full result as the tiny one (and the reverse)


def test_a_stopped_entry_continues_and_other_files_in_out_are_refused(smoke, tmp_path, monkeypatch):
    """An entry without entry.json whose sweep.yaml matches continues from its sweep (it was trained again from
    scratch, with --overwrite, until 2026-12-04); a report.md rlx bench did not write is refused."""
    from rlx.sweep import runner

    suite, out, rows = smoke
    copy = shutil.copytree(out, tmp_path / "out")
    os.remove(copy / rows[0]["name"] / "entry.json")
    monkeypatch.setattr(runner, "run_group", lambda *a, **k: pytest.fail("a finished sweep was trained again"))
    again = repro.run_suite(suite, str(copy))
    assert again[0]["per_seed"] == rows[0]["per_seed"] and (copy / rows[0]["name"] / "entry.json").exists()
    # Wall time and env steps/s count every session that trained it (they were the last session's alone)
    sessions = json.loads((copy / rows[0]["name"] / repro.SESSIONS).read_text())
    assert len(sessions) == again[0]["sessions"] == 2 and sessions[0]["wall_seconds"] == rows[0]["wall_seconds"]
    assert again[0]["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in sessions))
    training = sum(s["wall_seconds"] - s["compile_seconds"] for s in sessions)
    assert again[0]["env_steps_per_second"] == pytest.approx(rows[0]["env_steps"] * rows[0]["seeds"] / training)
    assert f"{again[0]['wall_seconds']:.0f} (2 sessions) |" in open(copy / "report.md").read()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    os.remove(copy / rows[0]["name"] / "entry.json")
    with monkeypatch.context() as patch:
        patch.setattr(sweep, "run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            repro.run_suite(suite, str(copy))
    assert len(json.loads((copy / rows[0]["name"] / repro.SESSIONS).read_text())) == 3  # counted when continued
    # A run that diverged is no result: left out of the IQM and counted (its last value was reported as final)
    summary = copy / rows[0]["name"] / "runs" / "h00-seed1" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "diverged"}))
    again = repro.run_suite(suite, str(copy))[0]
    assert again["diverged"] == 1 and np.isnan(again["per_seed"][1]) and again["env_steps"] == rows[0]["env_steps"]
    kept = [x for i, x in enumerate(rows[0]["per_seed"]) if i != 1]
    assert again["final_iqm"] == pytest.approx(stats.iqm(np.array(kept)))
    assert (
        f"| {rows[0]['name']} | {rows[0]['env_steps']:,} | {rows[0]['seeds']} (1 diverged) |"
        in open(copy / "report.md").read()
    )
    # a run's or a sweep's directory as --out: refused (the entries and report were written among its files)
    run_dir = copy / rows[0]["name"] / "runs" / "h00-seed0"
    for held, what in ((run_dir, "a run"), (copy / rows[0]["name"], "a sweep")):
        with pytest.raises(ConfigError, match=f"^--out {held}: holds {what}; a bench report goes in a directory of"):
            repro.run_suite(suite, str(held))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.md").write_text("my notes")
    with pytest.raises(ConfigError, match="has a report.md or report.json that rlx bench did not write"):
        repro.run_suite(suite, str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "report.md").read_text() == "my notes"


def test_gpu_tier_builds_every_entry_and_runs_a_sample_tiny_on_cpu(tmp_path):
    suite = repro.load_suite("gpu")  # builds every entry's run config
    for entry in suite.entries:
        tiny = repro.run_data(entry, tiny=True)
        assert tiny["agent"]["num_envs"] <= 16, entry.name
        config = driver.build_config(tiny)  # valid when shrunk too (e.g. whole GAE segments in the shorter unroll)
        # one iteration; off-policy, until every env holds one n-step run, where the gradient steps start
        n_step, rollout = getattr(config.agent, "n_step", 1), getattr(config.agent, "rollout_length", 1)
        assert driver.plan_for(config).num_iterations == -(-n_step // rollout), entry.name
        # the budget config.yaml records and the run prints is what it trains (it said 1 for on-policy entries)
        assert driver.plan_for(config).total_env_steps == config.total_env_steps, entry.name
        if hasattr(config.agent, "learning_starts"):
            assert config.agent.learning_starts == config.agent.num_envs * n_step, entry.name
    # two gymnax entries: a Playground entry's tiny run is ~80 s of mjx compile here, and PPO on a Playground env
    # is trained (and resumed) by test_randomization.py
    sample = ("pqn_breakout_minatar", "iqn_breakout_minatar")
    rows = repro.run_suite(suite, str(tmp_path), only=sample, tiny=True)
    assert [r["name"] for r in rows] == list(sample)
    assert all(r["status"] == "completed" and r["seeds"] == 2 and np.isfinite(r["final_iqm"]) for r in rows)
    assert (
        "tiny: one iteration, or until each env holds an n-step run; two seeds" in open(tmp_path / "report.md").read()
    )


def write_suite(tmp_path, entries):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}))  # YAML, so NaN is .nan
    return str(path)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "a", "config": "ppo_cartpole", "budget": 5}],
            "entries[0].budget: unknown key; allowed: name, config",
        ),
        ([{"name": "a"}], "entries[0].config: required, a string"),
        ([{"name": "a", "config": "ppo_cartpole", "seeds": 0}], "entries[0] (a).seeds: must be an integer > 0"),
        (
            [{"name": "a", "config": "ppo_cartpole", "reference": {"low": 1}}],
            "entries[0] (a).reference: needs exactly low, high and source",
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "reference": {"low": 2, "high": 1, "source": "x"}}],
            "entries[0] (a).reference.high: must be >= low = 2",
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "reference": {"low": "abc", "high": 1, "source": "x"}}],
            "entries[0] (a).reference.low: must be a number; got 'abc'",  # was a ValueError traceback
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "threshold": "high"}],
            "entries[0] (a).threshold: must be a finite number",  # was a traceback after the entry had trained
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "threshold": float("nan")}],
            "entries[0] (a).threshold: must be a finite number (a return); got nan",  # was reported as '(≥ -)'
        ),
        ([{"name": "../out", "config": "ppo_cartpole"}], "entries[0].name: letters, digits"),  # wrote outside --out
        ([{"name": "./p", "config": "ppo_cartpole"}], "entries[0].name: letters, digits"),  # shared p's folder
        ([{"name": "a", "config": "no_such_preset"}], "no_such_preset"),
        (
            [{"name": "a", "config": "ppo_cartpole", "set": {"agent.num_envs": -1}}],
            "entries[0] (a): agent.num_envs: must be > 0",
        ),
        (
            [{"name": "a", "config": "ppo_cartpole"}, {"name": "a", "config": "dqn_cartpole"}],
            "entry names must be unique",
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "reference": {"low": float("nan"), "high": 1, "source": "x"}}],
            "entries[0] (a).reference.low: must be a number, not NaN",  # named high (found by a probe)
        ),
        ([], "needs a non-empty list under entries"),
        ([{"name": "a", "config": "ppo_cartpole", "baseline": "a"}], "entries[0] (a).baseline: another entry's name"),
        (
            [{"name": "a", "config": "ppo_cartpole", "baseline": "b"}, {"name": "c", "config": "dqn_cartpole"}],
            "entries[0] (a).baseline: no entry 'b'; entries: a, c",
        ),
        (
            [{"name": "a", "config": "ppo_cartpole", "baseline": "s"}, {"name": "s", "config": "sac_pendulum"}],
            "(a).baseline: s trains on gymnax/Pendulum-v1, this entry on gymnax/CartPole-v1; a baseline is on the same env",
        ),
    ],
)
def test_bad_suites_fail_in_one_line_before_anything_runs(tmp_path, entries, message):
    with pytest.raises(ConfigError) as info:
        repro.load_suite(write_suite(tmp_path, entries))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_unknown_suite_and_entry_names_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    assert cli.main(["bench", "smoke", "--out", str(tmp_path / "afile")]) == cli.EXIT_CONFIG_ERROR  # a traceback
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'afile'}: is a file" in err and "bench directory" not in err  # named before the check
    from rlx import host

    with pytest.raises(ConfigError, match=f"^--out {tmp_path / 'afile' / 'sub'}: not writable \\(Not a directory\\)$"):
        host.make_dir(str(tmp_path / "afile" / "sub"))  # as rlx plot --out FILE/sub met it
    assert (tmp_path / "afile").read_text() == "mine"
    assert cli.main(["bench", "nosuch"]) == cli.EXIT_CONFIG_ERROR
    assert (
        "suite: 'nosuch' is neither a file nor a packaged suite (cpu, gpu, hopper_cpu, methods_cpu, smoke)"
        in capsys.readouterr().err
    )
    suite = repro.load_suite(write_suite(tmp_path, [{"name": "a", "config": "ppo_cartpole"}]))
    with pytest.raises(ConfigError, match="--only: no entry 'b' in suite suite"):
        repro.run_suite(suite, str(tmp_path / "out"), only=("b",))
    cannot = {"name": "b", "config": "sac_pendulum", "set": {"env.name": "gymnax/CartPole-v1"}}  # valid config
    suite = repro.load_suite(write_suite(tmp_path, [{"name": "a", "config": "ppo_cartpole"}, cannot]))
    with pytest.raises(ConfigError, match="suite suite, entry b: algo sac cannot train on env gymnax/CartPole-v1"):
        repro.run_suite(suite, str(tmp_path / "out"))  # before entry a trained
    assert not os.path.exists(tmp_path / "out")
    assert cli.main(["bench"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("smoke", "cpu", "gpu", "hopper_cpu", "methods_cpu"))


def test_every_packaged_suite_builds_every_entry():
    for name in repro.suite_names():
        suite = repro.load_suite(name)  # builds each entry's run config; a bad one raises ConfigError
        assert suite.entries, name


def test_the_cpu_tiers_run_every_algorithm_on_a_cpu_task():
    from rlx.algos import ALGORITHMS

    covered = {
        driver.build_config(repro.run_data(entry, tiny=False)).algo
        for name in ("cpu", "methods_cpu")
        for entry in repro.load_suite(name).entries
    }
    assert covered == set(ALGORITHMS), set(ALGORITHMS) - covered
