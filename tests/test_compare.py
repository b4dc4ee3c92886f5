"""``rlx compare --method``: methods across tasks on sweep directories written by hand (known scores, no training).
The one-task form is tested on a trained sweep in ``test_sweep.py``."""

import json
import os
import re

import numpy as np
import pytest
import yaml

from rlx import cli, compare, stats, sweep
from rlx.config import ConfigError

TASKS = ["gymnax/CartPole-v1", "gymnax/Acrobot-v1"]


def fake_sweep(path, scores, steps=(1000, 2000)):
    """A sweep directory of PPO over ``TASKS`` (a group each) whose run for seed s on task t logged
    ``scores[t][s] * (i + 1) / len(steps)`` at the i-th of ``steps``; a score of None marks the run diverged."""
    spec = {
        "config": {"algo": "ppo", "total_env_steps": steps[-1], "num_chunks": len(steps)},
        "seeds": len(scores[0]),
        "groups": {"env.name": TASKS},
    }
    os.makedirs(path)
    with open(os.path.join(path, "sweep.yaml"), "w") as f:
        yaml.safe_dump(spec, f)
    for group in sweep.expand(sweep.spec_from_dict(spec)):
        task = TASKS.index(group.config.env.name)
        for member in group.members:
            run_dir = os.path.join(path, "runs", member.name)
            os.makedirs(run_dir)
            score = scores[task][member.seed]
            status = "diverged" if score is None else "completed"
            with open(os.path.join(run_dir, "summary.json"), "w") as f:
                json.dump({"status": status}, f)
            with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
                for i, step in enumerate(steps):
                    value = 0.0 if score is None else score * (i + 1) / len(steps)
                    f.write(json.dumps({"chunk": i + 1, "env_steps": step, "eval/episode_return": value}) + "\n")
    return str(path)


A = [[100.0, 200.0, 300.0, 400.0, 500.0], [-500.0, -400.0, -300.0, -200.0, -100.0]]
B = [[150.0, 250.0, 350.0, 450.0, 550.0], [-500.0, -500.0, -500.0, -500.0, -500.0]]


def test_methods_across_tasks_average_the_probability_of_improvement_and_name_their_mistakes(tmp_path, capsys):
    a, b = fake_sweep(tmp_path / "a", A), fake_sweep(tmp_path / "b", B)
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--method", f"base={a}", "--method", f"new={b}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.load(open(out / "compare.json"))
    assert saved["tasks"] == TASKS and [m["name"] for m in saved["methods"]] == ["base", "new"]
    # by hand: CartPole, new beats base in 15 of 25 pairs (150 > 100; 250 > 100, 200; ...); Acrobot, new's -500s tie
    # base's one -500 and lose the other 20 pairs: (0 + 0.5 * 5) / 25. Averaged: (15 / 25 + 2.5 / 25) / 2
    estimate, low, high = saved["methods"][1]["p_improvement"]
    assert estimate == pytest.approx((15 / 25 + 2.5 / 25) / 2)
    matrix = lambda scores: np.array(scores).T  # noqa: E731  [seeds, tasks]
    reference = stats.bootstrap_ci_between(matrix(B), matrix(A), stats.probability_of_improvement)
    assert (estimate, low, high) == pytest.approx(reference)
    assert saved["methods"][1]["verdict"] == ("higher" if low > 0.5 else "lower" if high < 0.5 else "not separated")
    cartpole = saved["methods"][0]["per_task"][0]
    assert (cartpole["iqm"], cartpole["env_steps"], cartpole["seeds"]) == (pytest.approx(300.0), 2000, 5)
    assert "| gymnax/CartPole-v1 | 300.0 [" in printed and "| new | 2 | 0.35 [" in printed
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    at_first = compare.compare_methods({"base": [a], "new": [f"{b}:1", f"{b}:0"]}, at=1500)  # tasks in base's order
    assert at_first["tasks"] == TASKS and at_first["methods"][1]["per_task"][0]["iqm"] == pytest.approx(175.0)

    assert cli.main(["compare", f"{a}:0", f"{b}:1"]) == 0  # one task's form on two tasks: said, not refused
    assert "train on different envs (gymnax/CartPole-v1, gymnax/Acrobot-v1)" in capsys.readouterr().out

    c = fake_sweep(tmp_path / "c", [A[0], [*A[1][:4], None]])  # a diverged Acrobot run: 4 seeds there, 5 on CartPole
    for argv, message in [
        (["--method", f"base={a}"], "compare: 1 method given"),
        (["--method", f"base={a}", "--method", f"new={b}:0"], "--method new: not the tasks of base: it lacks gymnax/A"),
        (["--method", f"base={a}", "--method", f"new={b},{c}:0"], "--method new: two settings on gymnax/CartPole-v1"),
        (["--method", f"base={a}", "--method", f"new={c}"], "--method new: its tasks have different numbers of seeds"),
        (["--method", f"base={a}", "--method", "new"], "--method new: expected NAME=SWEEP_DIR"),
        (["--method", f"base={a}", "--method", f"base={b}"], "--method base: given twice"),
        ([a, "--method", f"base={a}", "--method", f"new={b}"], "give targets or --method options, not both"),
        (["--method", f"base={a}", "--method", f"new={b}", "--threshold", "1"], "--threshold: not with --method"),
        ([], "compare: name sweep directories"),
    ]:
        assert cli.main(["compare", *argv]) == cli.EXIT_CONFIG_ERROR, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(re.escape(message), err), (argv, err)


def test_at_a_share_of_the_budget_scores_each_entry_at_that_point_of_its_own_budget(tmp_path, capsys):
    # PPO on gymnax trains whole iterations of 2048 env steps: the budgets are 4096 and 8192, evaluated at 1/2 and 1
    a, b = fake_sweep(tmp_path / "a", A, steps=(2048, 4096)), fake_sweep(tmp_path / "b", B, steps=(4096, 8192))
    rows = compare.compare([f"{a}:0", f"{b}:0"], at="50%")
    assert [r["env_steps"] for r in rows] == [2048, 4096]
    assert [r["iqm"] for r in rows] == pytest.approx([150.0, 175.0])  # half of the final IQMs 300 and 350
    assert [r["env_steps"] for r in compare.compare([f"{a}:0", f"{b}:0"], at="100%")] == [4096, 8192]
    assert "at or before 50% of each entry's budget" in compare.table(rows, at="50%")

    out = tmp_path / "cmp"
    argv = ["compare", "--method", f"base={a}", "--method", f"new={b}", "--at", "50%", "--out", str(out)]
    assert cli.main(argv) == 0
    saved = json.load(open(out / "compare.json"))
    assert saved["at"] == "50%"
    assert [t["env_steps"] for m in saved["methods"] for t in m["per_task"]] == [2048, 2048, 4096, 4096]
    assert "| gymnax/CartPole-v1 | 150.0 [" in capsys.readouterr().out
    assert cli.main(["compare", f"{a}:0", f"{b}:0", "--at", "1e9"]) == 0  # env steps in float notation: the last
    assert "| 8,192 |" in capsys.readouterr().out

    for at, message in [
        ("25%", "CartPole-v1's first evaluation is at 2,048 env steps (25% of its budget is 1,024)"),
        ("0%", "--at 0%: a share of the budget is a percentage in (0, 100], e.g. 50%"),
        ("150%", "--at 150%: a share of the budget is a percentage in (0, 100]"),
        ("half%", "--at half%: a share of the budget is a percentage"),
        ("half", "--at half: expected env steps (100000, 1e5) or a share of each entry's budget (50%)"),
        ("0", "--at: env steps must be positive; got 0"),
    ]:
        assert cli.main(["compare", f"{a}:0", f"{b}:0", "--at", at]) == cli.EXIT_CONFIG_ERROR, at
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (at, err)


def test_normalized_scores_pool_across_tasks_into_one_iqm_per_method(tmp_path, capsys):
    a, b = fake_sweep(tmp_path / "a", A), fake_sweep(tmp_path / "b", B)
    out = tmp_path / "cmp"
    argv = ["--method", f"base={a}", "--method", f"new={b}"]
    ranges = ["--normalize", "gymnax/CartPole-v1=0:500", "--normalize", "gymnax/Acrobot-v1=-500:0"]
    assert cli.main(["compare", *argv, *ranges, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    base, new = json.load(open(out / "compare.json"))["methods"]
    # by hand: base's scores map to 0.2..1.0 (CartPole) and 0..0.8 (Acrobot); of the ten sorted, the IQM weighs
    # the 3rd and 8th by half: (0.1 + 0.4 + 0.4 + 0.6 + 0.6 + 0.4) / 5 = 0.5. new's: five 0s (Acrobot), 0.3..1.1:
    # (0 + 0 + 0 + 0.3 + 0.5 + 0.35) / 5 = 0.23
    assert base["normalized_iqm"][0] == pytest.approx(0.5) and new["normalized_iqm"][0] == pytest.approx(0.23)
    to_unit = lambda scores: (np.array(scores).T - [0.0, -500.0]) / 500.0  # noqa: E731  [seeds, tasks]
    assert new["normalized_iqm"] == pytest.approx(list(stats.bootstrap_ci(to_unit(B))))
    assert new["normalized_difference"] == pytest.approx(list(stats.bootstrap_ci_between(to_unit(B), to_unit(A))))
    assert new["normalized_difference"][0] == pytest.approx(-0.27)
    low, high = new["normalized_difference"][1:]
    assert new["normalized_verdict"] == ("higher" if low > 0 else "lower" if high < 0 else "not separated")
    assert base["normalized_difference"] is None and "| new | 2 | 0.35 [" in printed
    assert "| 0.230 [" in printed and "gymnax/CartPole-v1 0:500, gymnax/Acrobot-v1 -500:0" in printed
    # the performance profile: above 0, base has all of CartPole's runs and 4 of Acrobot's 5, new none of Acrobot's
    taus = json.load(open(out / "compare.json"))["taus"]
    assert (taus[0], taus[-1], len(taus)) == (0.0, pytest.approx(1.1), compare.PROFILE_POINTS)
    assert base["profile"][0][0] == pytest.approx(0.9) and new["profile"][0][0] == pytest.approx(0.5)
    profile = stats.bootstrap_ci(to_unit(B), lambda x: stats.performance_profile(x, np.array(taus)))
    assert np.array(new["profile"]) == pytest.approx(np.array(profile))
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match=r"^--normalize \*=1:1: LOW and HIGH must be finite with LOW < HIGH$"):
        compare.compare_methods({"base": [a], "new": [b]}, normalize={"*": (1.0, 1.0)})
    every = compare.compare_methods({"base": [a], "new": [b]}, normalize={"*": (-500.0, 500.0)})
    assert every["methods"][0]["normalized_iqm"][0] == pytest.approx(stats.iqm((np.array(A) + 500.0) / 1000.0))

    for extra, message in [
        (["--normalize", "gymnax/CartPole-v1=0:500"], "--normalize: no range for gymnax/Acrobot-v1; give TASK=LOW"),
        (
            ["--normalize", "*=0:1,gymnax/Pong=0:1"],
            "--normalize gymnax/Pong: not one of the tasks (gymnax/CartPole-v1,",
        ),
        (["--normalize", "*=0"], "--normalize *=0: expected TASK=LOW:HIGH"),
        (["--normalize", "*=1:0"], "--normalize *=1:0: LOW and HIGH must be finite with LOW < HIGH"),
        (["--normalize", "*=0:inf"], "--normalize *=0:inf: LOW and HIGH must be finite"),
        (["--normalize", "*=0:1", "--normalize", "*=0:2"], "--normalize *: given twice"),
    ]:
        assert cli.main(["compare", *argv, *extra]) == cli.EXIT_CONFIG_ERROR, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (extra, err)
    assert cli.main(["compare", f"{a}:0", f"{b}:0", "--normalize", "*=0:1"]) == cli.EXIT_CONFIG_ERROR
    assert "--normalize: only with --method" in capsys.readouterr().err
