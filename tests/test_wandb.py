"""The optional Weights & Biases logger, in offline mode (no network): every metrics row reaches the W&B run at
its env step, the resolved config is the run's config, and a resumed run continues the same W&B run."""

import glob
import json
import os

import pytest
import wandb
from wandb.proto import wandb_internal_pb2

from rlx import cli
from rlx.config import ConfigError


def wandb_records(path):
    """The protobuf records of an offline ``run-*.wandb`` file: W&B's LevelDB-style log (a 7-byte header, then
    32 KiB blocks of records ``checksum(4) length(2) type(1) data``; types 1 full, 2-4 first/middle/last part)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk if kind == 4 else chunk)
            yield record
        pending = chunk if kind == 2 else pending + chunk if kind == 3 else b""


def logged(run_dir):
    """``(run records, history rows, exit codes)`` of every offline W&B run under ``run_dir``, oldest first."""
    runs, history, exits = [], [], []
    for path in sorted(glob.glob(os.path.join(run_dir, "wandb", "offline-run-*", "run-*.wandb"))):
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                runs.append(record.run)
            elif kind == "history":
                items = record.history.item
                history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
            elif kind == "exit":
                exits.append(record.exit.exit_code)
    return runs, history, exits


TRAIN = ["train", "ppo", "--no-preset", "--steps", "6144", "--set", "num_chunks=3", "--set", "agent.num_envs=4"]


def rlx_command(args):
    """``rlx ARGS`` as its own process ends it: wandb-core keeps an offline run's log in memory until the run's
    stream is closed, which the service does some time after ``finish`` returns, and at the latest at the
    process's exit (wandb's ``atexit`` teardown). Read before that, the file can still be a bare header (a
    loaded CI machine once saw one of the two runs without any record)."""
    code = cli.main(args)
    wandb.teardown()
    return code


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    return ["--set", "logging.wandb=true", "--set", "logging.mode=offline", "--set", "logging.project=rlx-test"]


def test_offline_wandb_run_gets_every_row_and_the_config_and_resume_continues_it(tmp_path, offline):
    run_dir = str(tmp_path / "run")
    assert rlx_command([*TRAIN, *offline, "--out", run_dir, "--stop-after-chunks", "2", "--quiet"]) == 0
    assert rlx_command(["train", "--resume", run_dir, "--quiet"]) == 0

    runs, history, exits = logged(run_dir)
    assert exits == [0, 0]  # stopped, then completed: both finished
    with open(os.path.join(run_dir, "wandb_id")) as f:
        run_id = f.read().strip()
    assert len(runs) == 2 and {r.run_id for r in runs} == {run_id}  # the resumed process continued the run
    config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert config["algo"] == "ppo" and config["logging"]["project"] == "rlx-test"
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [h["_step"] for h in history] == [r["env_steps"] for r in rows] == [2048, 4096, 6144]
    for h, r in zip(history, rows, strict=True):
        assert h["eval/episode_return"] == pytest.approx(r["eval/episode_return"])
        assert h["train/loss"] == pytest.approx(r["train/loss"])


def test_an_interrupted_run_finishes_its_wandb_run_as_failed(tmp_path, offline, monkeypatch):
    """W&B showed an interrupted (or diverged) run as finished: its exit code was 0 (found by a probe)."""
    from helpers import interrupting_evaluate

    from rlx import driver

    monkeypatch.setattr(driver.Experiment, "evaluate", interrupting_evaluate(1))
    run_dir = str(tmp_path / "run")
    assert rlx_command([*TRAIN, *offline, "--out", run_dir, "--quiet"]) == cli.EXIT_INTERRUPTED
    assert logged(run_dir)[2] == [1]


def test_training_without_a_run_directory_says_wandb_logs_nothing(capsys, monkeypatch):
    from rlx import driver

    monkeypatch.setattr(driver, "_run", lambda *args: None)
    driver.train({"logging": {"wandb": True, "mode": "offline"}}, None, progress=False)
    assert (
        capsys.readouterr().err == "rlx: note: logging.wandb=true logs nothing: run_dir is None (nothing is written)\n"
    )


def test_wandb_needs_its_package_before_anything_runs(monkeypatch):
    import importlib.util

    from rlx import driver

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"logging.wandb: needs the wandb package \(pip install wandb\); got true"):
        driver.build_config({"logging": {"wandb": True}})
