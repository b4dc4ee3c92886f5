"""Driver and CLI: run directory contract, resume from disk in a new process, fail-fast errors, divergence."""

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from helpers import subprocess_env, tree_equal

from rlx import cli, driver, evaluate, host, sweep
from rlx import config as config_module
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError, to_dict

SMALL = [
    "--steps",
    "4096",
    "--set",
    "num_chunks=2",
    "--set",
    "eval_episodes=4",
    "--set",
    "agent.num_envs=8",
    "--set",
    "agent.unroll_length=64",
    "--set",
    "agent.policy.hidden=[16]",
    "--set",
    "agent.value.hidden=[16]",
    "--quiet",
]


def rlx(*args, cache_dir):
    return subprocess.run(
        [sys.executable, "-m", "rlx.cli", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(cache_dir),
        timeout=600,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted CLI run and one stopped after chunk 1 and resumed in a new process."""
    root = tmp_path_factory.mktemp("runs")
    cache = root / "jax_cache"
    full, split = root / "full", root / "split"
    first = rlx("train", "ppo", *SMALL, "--out", str(full), cache_dir=cache)
    assert first.returncode == 0, first.stderr
    stopped = rlx("train", "ppo", *SMALL, "--out", str(split), "--stop-after-chunks", "1", cache_dir=cache)
    assert stopped.returncode == 0, stopped.stderr
    assert "status=stopped" in stopped.stdout
    resumed = rlx("train", "--resume", str(split), "--quiet", cache_dir=cache)
    assert resumed.returncode == 0, resumed.stderr
    return {"full": str(full), "split": str(split), "stdout": first.stdout}


def restore_final(run_dir):
    _, state, meta = evaluate.load(run_dir)  # newest valid checkpoint, checksum-verified
    return state, meta


def test_cli_run_writes_the_run_directory_contract(runs):
    run = runs["full"]
    assert "status=completed" in runs["stdout"] and "eval/episode_return=" in runs["stdout"]
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "tensorboard", "checkpoints"):
        assert os.path.exists(os.path.join(run, name)), name
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    assert [r["env_steps"] for r in rows] == [2048, 4096]
    for row in rows:
        assert {"chunk", "env_steps", "steps_per_second", "train/episode_return", "eval/episode_return"} <= set(row)
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["1", "2"]
    assert any(f.startswith("events") for f in os.listdir(os.path.join(run, "tensorboard")))
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert summary["status"] == "completed" and summary["eval/episode_return"] == rows[-1]["eval/episode_return"]
    assert open(os.path.join(run, "metrics.csv")).readline().startswith("chunk,env_steps,steps_per_second")


def test_resume_in_new_process_is_bitwise_equal_to_uninterrupted_run(runs):
    full_state, full_meta = restore_final(runs["full"])
    split_state, split_meta = restore_final(runs["split"])
    assert full_meta["chunks_done"] == split_meta["chunks_done"] == 2
    # the whole train state: params, optimizer, env state, normalizer, RNG key, counters
    for a, b in zip(jax.tree.leaves(full_state), jax.tree.leaves(split_state), strict=True):
        np.testing.assert_array_equal(a, b)
    full_rows = [json.loads(line) for line in open(os.path.join(runs["full"], "metrics.jsonl"))]
    split_rows = [json.loads(line) for line in open(os.path.join(runs["split"], "metrics.jsonl"))]
    assert [r["chunk"] for r in split_rows] == [1, 2]  # no duplicated or lost rows
    for a, b in zip(full_rows, split_rows):
        assert a["train/episode_return"] == b["train/episode_return"]
        assert a["eval/episode_return"] == b["eval/episode_return"]


def test_restored_checkpoint_equals_in_memory_state(runs, tmp_path):
    config = driver.load_run_config(runs["full"])
    result = driver.train(config, str(tmp_path / "again"), progress=False)
    state, _ = restore_final(str(tmp_path / "again"))
    for a, b in zip(jax.tree.leaves(result.state), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["train", "ppo", "--set", "agent.lr=1"], "agent.lr: unknown field"),
        (["train", "ppo", "--set", "agent.num_envs=two"], "agent.num_envs: expected an integer, got 'two'"),
        (["train", "ppo", "--set", "agent.clip_epsilon=-0.1"], "agent.clip_epsilon: must be > 0"),
        (["train", "ppo", "--set", "agent.num_minibatches=3"], "agent.num_minibatches: must divide"),
        (["train", "ppo", "--env", "gymnax/NoSuchEnv"], "env gymnax/NoSuchEnv: unknown gymnax env"),
        (["train", "ppo", "--env", "brax/ant?backend=warp"], "backend must be one of"),
        (["train", "dreamer"], "algo: unknown algorithm 'dreamer'"),
        (
            ["train", "ppo", "--config", "no/such.yaml"],
            "--config no/such.yaml: no such file or packaged preset; presets: a2c_ant",
        ),
        (["train", "--resume", "/nonexistent/run"], "no config.yaml there"),
        (["train", "--resume", "/x", "--set", "seed=1"], "--resume: cannot be combined with --set"),
        (["train", "ppo", "--stop-after-chunks", "0"], "--stop-after-chunks: must be > 0 chunks"),  # ran one chunk
        (["sweep", "ppo", "--stop-after-chunks", "-1"], "--stop-after-chunks: must be > 0 chunks"),
        (["train", "--resume", "/x", "--stop-after-chunks", "0"], "--stop-after-chunks: must be > 0 chunks"),
        # the pair is checked (the env made) before the config is printed or the sweep's runs listed
        (["train", "sac", "--env", "gymnax/CartPole-v1", "--print-config"], "algo sac cannot train on env"),
        (["sweep", "dqn", "--env", "gymnax/Pendulum-v1", "--dry-run"], "algo dqn cannot train on env"),
        # each of these was a traceback, a silently changed value or the wrong flag's name until 2026-12-04
        (["sweep", "ppo", "--seeds", "abc", "--dry-run"], "--seeds: a count N or a list of integers"),
        (["train", "ppo", "--env", "gymnax/CartPole-v1?observe=[0,2"], "env option 'observe' in"),
        (["train", "ppo", "--env", "gymnax/CartPole-v1?name=gymnax/Pendulum-v1"], "env option 'name' in"),
        (["train", "ppo", "--env", "gymnax/CartPole-v1?episode_length=9&episode_length=20"], "given twice"),
        (["sweep", "ppo", "--grid", "agent.gamma=0.9", "--grid", "agent.gamma=0.8"], "--grid agent.gamma: given twice"),
        (["train", "ppo", "--set", "agent.learning_rate=inf"], "agent.learning_rate: expected a finite number"),
        (["train", "ppo", "--seed", str(2**32)], "seed: must be >= 0 and < 4294967296; got 4294967296"),
        (["sweep", "ppo", "--seeds", f"0,{2**64}", "--dry-run"], "must be >= 0 and < 4294967296"),
        (["train", "--resume", "/x", "--overwrite"], "--resume: cannot be combined with --overwrite"),
        (["sweep", "--spec", "/no/such.yaml"], "--spec /no/such.yaml: no such file or packaged sweep; packaged: ppo"),
        (["train", "ppo", "--config", "/tmp"], "--config /tmp: no such file or packaged preset"),
        (["sweep", "ppo", "--seeds", str(2**32), "--dry-run"], "seeds: must be > 0 and <= 1,048,576"),  # MemoryError
        (["sweep", "ppo", "--devices", "64", "--dry-run"], "--devices (num_devices): must be between 1 and"),
        (["sweep", "ppo", "--grid", "agent.gamma=0.99,0.990", "--dry-run"], "value 0.99 given twice"),
    ],
)
def test_bad_input_fails_before_compiling_with_one_line(argv, expected, capsys, monkeypatch, tmp_path):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(driver.Experiment, "run_chunk", no_compile)
    monkeypatch.setattr(driver.Experiment, "init", no_compile)
    code = cli.main([*argv, "--quiet"] + ([] if "--resume" in argv else ["--out", str(tmp_path / "r")]))
    notes = ("rlx: run directory", "rlx: using preset")  # informational lines before the error
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith(notes)]
    assert code == cli.EXIT_CONFIG_ERROR
    assert len(err) == 1, err
    assert err[-1].startswith("rlx: config error: ") and expected in err[-1], err


def test_rlx_plot_of_a_run_writes_its_learning_curve(runs, tmp_path, capsys):
    assert cli.main(["plot", runs["full"], "--out", str(tmp_path)]) == 0
    path = tmp_path / "curve.png"
    assert f"rlx: wrote {path}" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text("")
    (empty / "config.yaml").write_text("algo: ppo\n")
    assert cli.main(["plot", str(empty)]) == cli.EXIT_CONFIG_ERROR
    assert "no episode return logged yet" in capsys.readouterr().err
    (empty / "metrics.jsonl").unlink()
    assert cli.main(["plot", str(empty)]) == cli.EXIT_CONFIG_ERROR
    assert f"rlx: config error: plot {empty}: the run has logged no metrics yet" in capsys.readouterr().err
    assert cli.main(["plot", runs["full"], "--metric", "train/loss"]) == cli.EXIT_CONFIG_ERROR  # was ignored
    assert "--metric: sweeps only" in capsys.readouterr().err
    assert cli.main(["plot", runs["full"], "--out", os.path.join(runs["full"], "config.yaml")]) == 2  # a traceback
    assert "config.yaml: is a file" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path / "none")]) == cli.EXIT_CONFIG_ERROR  # said "--resume ..." before
    assert f"rlx: config error: plot {tmp_path / 'none'}: no such directory\n" == capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path)]) == cli.EXIT_CONFIG_ERROR
    assert f"plot {tmp_path}: neither an rlx run directory (config.yaml) nor a sweep" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(runs, capsys):
    before = open(os.path.join(runs["full"], "metrics.jsonl")).read()
    code = cli.main(["train", "ppo", "--out", runs["full"], "--quiet"])
    assert code == cli.EXIT_CONFIG_ERROR
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert open(os.path.join(runs["full"], "metrics.jsonl")).read() == before


def test_divergence_stops_with_a_clear_message(tmp_path):
    config = driver.build_config(
        {
            "total_env_steps": 3 * 256,
            "num_chunks": 3,
            "checkpoint_every": 1,
            "agent": {
                "num_envs": 4,
                "unroll_length": 64,
                "policy": {"hidden": [8]},
                "value": {"hidden": [8]},
                "learning_rate": 1e38,
                "max_grad_norm": 1e38,
                "reward_scaling": 1e30,
            },
        }
    )
    with pytest.raises(driver.DivergenceError) as info:
        driver.train(config, str(tmp_path / "div"), progress=False)
    message = str(info.value)
    assert message.startswith("training diverged: non-finite")
    assert "in iteration 1 (env steps 0 to 256, chunk 1); run stopped" in message
    summary = json.load(open(tmp_path / "div" / "summary.json"))
    assert summary["status"] == "diverged"


def test_eval_cli_reports_return_and_renders_a_rollout(runs, tmp_path, capsys):
    out = tmp_path / "rollout.html"
    assert cli.main(["eval", runs["full"], "--episodes", "3", "--render", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "checkpoint 2 (env step 4096): eval/episode_return=" in printed and "over 3 episodes" in printed
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    # without --seed: the key of the checkpoint's own evaluation, so the logged value comes back (it was the first
    # chunk's key: another number without a word; a probe), from the run and from its exported policy
    logged = [json.loads(line) for line in open(os.path.join(runs["full"], "metrics.jsonl"))][-1]
    assert cli.main(["export", runs["full"], str(tmp_path / "policy.npz")]) == 0
    for source in (runs["full"], str(tmp_path / "policy.npz")):
        capsys.readouterr()
        assert cli.main(["eval", source]) == 0
        printed = capsys.readouterr().out
        assert f"eval/episode_return={logged['eval/episode_return']:.2f} +- " in printed, source
        assert "evaluation key 1" in printed
    assert cli.main(["eval", runs["full"], "--episodes", "0"]) == cli.EXIT_CONFIG_ERROR
    for argv, message in (
        (["--seed", "-1"], "--seed: must be >= 0"),
        (["--render", str(tmp_path)], "must name the .html file"),
    ):
        assert cli.main(["eval", runs["full"], *argv]) == cli.EXIT_CONFIG_ERROR, argv  # tracebacks before
        assert message in capsys.readouterr().err
    config = open(os.path.join(runs["full"], "config.yaml")).read()
    assert cli.main(["eval", runs["full"], "--render", os.path.join(runs["full"], "config.yaml")]) == 2
    assert open(os.path.join(runs["full"], "config.yaml")).read() == config  # the page replaced it before
    assert cli.main(["eval", str(tmp_path)]) == cli.EXIT_CONFIG_ERROR  # said "--resume ..." before
    assert f"rlx: config error: eval {tmp_path}: no config.yaml there" in capsys.readouterr().err


def _small_ppo(**changes):
    data = {
        "algo": "ppo",
        "total_env_steps": 2048,
        "num_chunks": 2,
        "eval_episodes": 2,
        "tensorboard": False,
        "agent": {"num_envs": 4, "unroll_length": 32, "policy": {"hidden": [8]}, "value": {"hidden": [8]}},
    }
    data.update(changes)
    return driver.build_config(data)


def test_extending_a_finished_run_equals_the_run_planned_that_long(tmp_path):
    """A finished constant-rate run continued with --resume DIR --steps N is bitwise the run planned with N
    from the start (the same chunk length); linear schedules stretch to the new length."""
    run_dir = str(tmp_path / "run")
    first = driver.train(_small_ppo(), run_dir, progress=False)
    assert first.status == "completed" and first.experiment.plan.iterations_per_chunk == 8
    summary = open(os.path.join(run_dir, "summary.json")).read()
    assert driver.resume(run_dir, progress=False).status == "completed"  # nothing left to train:
    assert open(os.path.join(run_dir, "summary.json")).read() == summary  # its timings are kept, not zeroed
    code = cli.main(["train", "--resume", run_dir, "--steps", "4096", "--quiet"])
    assert code == 0
    extended = driver.load_run_config(run_dir)
    assert (extended.total_env_steps, extended.num_chunks, extended.iterations_per_chunk) == (4096, 4, 8)
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    assert [r["env_steps"] for r in rows] == [1024, 2048, 3072, 4096]
    state = Checkpointer(os.path.join(run_dir, "checkpoints")).restore(4, driver.Experiment(extended).abstract_state())[
        0
    ]
    planned = driver.train(_small_ppo(total_env_steps=4096, num_chunks=4), None, progress=False).state
    assert tree_equal(state.params, planned.params) and int(state.total_iterations) == 32

    with pytest.raises(ConfigError, match="extending a run needs more than its 4096 env steps; got 2048"):
        driver.resume(run_dir, total_env_steps=2048, progress=False)
    for stop in (0, -2):  # the Python API refuses what the CLI refuses, before anything is built
        with pytest.raises(ConfigError, match=f"stop_after_chunks: must be > 0 chunks .*; got {stop}"):
            driver.resume(run_dir, total_env_steps=8192, progress=False, stop_after_chunks=stop)
        with pytest.raises(ConfigError, match="stop_after_chunks: must be > 0 chunks"):
            driver.train(_small_ppo(), None, progress=False, stop_after_chunks=stop)
    assert driver.load_run_config(run_dir).total_env_steps == 4096
    member = shutil.copytree(run_dir, tmp_path / "sweep" / "runs" / "h00-seed0")  # a run of a sweep
    (tmp_path / "sweep" / "sweep.yaml").write_text("config: {algo: ppo}\n")
    with pytest.raises(ConfigError, match="is a run of the sweep .*; extending it alone would put runs of different"):
        driver.resume(str(member), total_env_steps=8192, progress=False)  # its sweep's tables mixed budgets
    assert driver.load_run_config(str(member)).total_env_steps == 4096


def test_extending_stretches_linear_schedules_and_refuses_a_short_last_chunk(tmp_path, capsys):
    run_dir = str(tmp_path / "linear")
    driver.train(
        _small_ppo(agent={"num_envs": 4, "unroll_length": 32, "lr_schedule": "linear"}), run_dir, progress=False
    )
    killed, edited = shutil.copytree(run_dir, tmp_path / "killed"), shutil.copytree(run_dir, tmp_path / "edited")
    result = driver.resume(run_dir, total_env_steps=4096, progress=False)
    assert int(result.state.total_iterations) == 32
    assert all(row["train/learning_rate"] > 0 for row in result.rows)  # the schedule continues over the new length

    # An extension killed before its first checkpoint has written the longer config.yaml: a plain resume
    # continued with the old total_iterations in the state, and the learning rate went below 0.
    host.write_config(str(killed), driver.extended_config(driver.load_run_config(str(killed)), 4096))
    again = driver.resume(str(killed), progress=False)
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_second"} for r in rows]  # noqa: E731
    assert tree_equal(again.state.params, result.state.params) and timeless(again.rows) == timeless(result.rows)

    # A budget edited by hand moved chunk boundaries away from the checkpoints (and trained another budget
    # while reporting the file's): refused, naming the field.
    host.write_config(str(edited), dataclasses.replace(driver.load_run_config(str(edited)), num_chunks=1))
    with pytest.raises(ConfigError, match=r"\(num_chunks: 2 there, 1 here\); its chunks and checkpoints follow"):
        driver.resume(str(edited), progress=False)
    uneven = str(tmp_path / "uneven")
    driver.train(_small_ppo(total_env_steps=1280, num_chunks=3), uneven, progress=False)  # 10 iterations: 4 + 4 + 2
    with pytest.raises(ConfigError, match="its last chunk was shorter \\(2 of 4 iterations\\)"):
        driver.resume(uneven, total_env_steps=4096, progress=False)
    # An extension by a budget that is no multiple of the iteration: rounded up, as rlx train says, and it leaves
    # a short last chunk (no later extension): both were silent (found by a probe)
    capsys.readouterr()
    assert driver.resume(run_dir, total_env_steps=4097, progress=False).rows[-1]["env_steps"] == 4224
    assert capsys.readouterr().err.splitlines()[:2] == [
        "rlx: note: total_env_steps=4097 is not a multiple of the 128 env steps per iteration; training 4224 env "
        "steps (33 iterations) instead",
        "rlx: note: the last chunk trains 1 of 8 iterations, so this run cannot be extended again",
    ]


def test_a_run_says_when_its_chunks_are_not_num_chunks(capsys, monkeypatch):
    """Chunks are whole iterations of one length (only the last may be shorter), so 6 iterations make 3 chunks of 2
    when 5 are asked: the run logged, evaluated and checkpointed 3 times without a word (found by a probe)."""
    notes = lambda **changes: driver.Experiment(_small_ppo(**changes)).notes  # noqa: E731  128 steps per iteration
    assert notes(total_env_steps=768, num_chunks=5) == [
        "num_chunks=5: the 6 iteration(s) split into 3 chunk(s) of 2, as chunks are whole iterations of one length; "
        "logging, evaluation and checkpoints follow them"
    ]
    assert notes(total_env_steps=896, num_chunks=6)[0].startswith(
        "num_chunks=6: the 7 iteration(s) split into 4 chunk(s) of 2 (the last 1)"
    )
    assert notes(total_env_steps=128, num_chunks=8)[0].startswith(
        "num_chunks=8: the 1 iteration(s) split into 1 chunk(s) of 1,"
    )
    assert notes(total_env_steps=768, num_chunks=3) == notes(total_env_steps=896, num_chunks=4) == []  # 2 + 2 + 2 + 1
    assert notes(total_env_steps=768, num_chunks=2, iterations_per_chunk=2) == [
        "num_chunks=2 is not read: iterations_per_chunk=2 makes 3 chunk(s) of the 6 iterations"
    ]
    monkeypatch.setattr(driver, "_run", lambda *args: None)
    driver.train(_small_ppo(total_env_steps=768, num_chunks=5), None, progress=False)  # rlx train prints it
    assert capsys.readouterr().err.startswith("rlx: note: num_chunks=5: the 6 iteration(s) split into 3 chunk(s) of 2")


def test_numpy_values_from_python_validate_and_never_leave_an_empty_config_yaml(tmp_path):
    """np.int64 seeds and budgets passed dataclasses.replace and train/resume, then YAML could not represent them:
    config.yaml was truncated to 0 bytes (the run could no longer be read) and sweep.yaml likewise (its resume
    then trained the default sweep)."""
    config = driver.build_config({**to_dict(_small_ppo()), "seed": np.int64(1)})
    assert type(config.seed) is int and driver.build_config(config) == config
    rate = driver.build_config({**to_dict(_small_ppo()), "agent": {"learning_rate": np.float32(1e-3)}})
    assert rate.agent.learning_rate == 0.001  # was float32's float64 expansion, 0.0010000000474974513
    assert config_module.plain_data(np.array([3e-4, 1e38, np.inf], np.float32)) == [0.0003, 1e38, math.inf]
    assert config_module.plain_data(jnp.float16(0.1)) == 0.1
    run_dir = str(tmp_path / "run")
    driver.train(dataclasses.replace(_small_ppo(), seed=np.int64(1)), run_dir, progress=False)
    assert driver.load_run_config(run_dir).seed == 1
    driver.resume(run_dir, total_env_steps=np.int64(4096), progress=False)
    assert driver.load_run_config(run_dir).total_env_steps == 4096
    with pytest.raises(ConfigError, match="--steps: expected a whole number of env steps, got '8192'"):
        driver.resume(run_dir, total_env_steps="8192", progress=False)
    with pytest.raises(ConfigError, match="stop_after_chunks: must be > 0 chunks .*; got 1.5"):
        driver.train(_small_ppo(), None, progress=False, stop_after_chunks=1.5)
    with pytest.raises(ConfigError, match="--episodes: must be > 0; got 2.5"):
        evaluate.load(run_dir, eval_episodes=2.5)
    path = os.path.join(run_dir, "config.yaml")
    before = open(path).read()
    with pytest.raises(yaml.representer.RepresenterError):
        host.write_yaml(path, {"x": object()})  # a value YAML cannot represent: the old file stays whole
    assert open(path).read() == before

    spec = sweep.spec_from_dict(
        {
            "config": to_dict(_small_ppo()),
            "seeds": np.arange(2),
            "grid": {"agent.learning_rate": np.array([1e-3, 3e-4])},
        }
    )
    assert spec.seeds == (0, 1) and yaml.safe_load(yaml.safe_dump(sweep.spec_to_dict(spec)))["grid"] == {
        "agent.learning_rate": [1e-3, 3e-4]
    }
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.yaml").write_text("")
    with pytest.raises(ConfigError, match="its sweep.yaml is empty"):
        sweep.load_spec(str(tmp_path / "sw"))


def test_experiment_refuses_a_chunk_past_the_plan_a_foreign_or_donated_state_and_a_bad_seed():
    """A chunk index past the plan trained on and returned NaN metrics; a state of another config was trained as
    if it were this one's and then broke the compiled chunk; init(seed=2**32) was seed 0. A NumPy or JAX integer
    index (a loop over np.arange) is an index like an int (it was refused)."""
    experiment = driver.Experiment(_small_ppo())
    state = experiment.init()
    bad_indices = ((2, "must be in 0..1"), (-1, "must be in 0..1"), (np.int64(2), "must be in 0..1"))
    for index, message in bad_indices + (("0", "expected an integer"), (np.float64(0), "expected an integer")):
        with pytest.raises(ConfigError, match=f"chunk_index: {message}"):
            experiment.run_chunk(state, index)
    wider = driver.Experiment(_small_ppo(agent={**to_dict(experiment.config.agent), "num_envs": 8}))
    with pytest.raises(
        ConfigError, match=r"state: \.env_step\..*: .*\[4\] vs .*\[8\] \(the state's vs this experiment's"
    ):
        wider.run_chunk(state, 0)
    stacked = jax.tree.map(lambda x: jnp.stack([x, x, x]), state)  # a sweep group's states, as sweep.run returns
    with pytest.raises(ConfigError, match=r"^state: the stacked states of 3 runs .*jax.tree.map\(lambda x: x\[i\]"):
        experiment.check_state(stacked)
    experiment.run_chunk(state, np.int64(0))
    with pytest.raises(ConfigError, match="state: was donated to an earlier run_chunk and deleted"):
        experiment.run_chunk(state, jnp.int32(1))
    for seed in (2**32, -1, 1.5):
        with pytest.raises(ConfigError, match="seed: must be an integer >= 0 and < 4294967296"):
            experiment.init(seed)
    with pytest.raises(ConfigError, match="num_chunks: must be > 0; got 0"):
        driver.Experiment(dataclasses.replace(experiment.config, num_chunks=0))
