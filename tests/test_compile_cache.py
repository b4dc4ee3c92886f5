"""The persistent compilation cache the CLI turns on: a second run of a config loads its programs."""

import json
import os
import subprocess
import sys

import pytest

from rlx import cli

ARGS = ["train", "ppo", "--no-preset", "--steps", "2048", "--set", "num_chunks=2", "--set", "eval_episodes=2"]
ARGS += ["--set", "agent.num_envs=4", "--set", "agent.unroll_length=32", "--set", "agent.policy.hidden=[8]"]
ARGS += ["--set", "agent.value.hidden=[8]", "--set", "tensorboard=false", "--quiet"]


def run(tmp_path, out, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("RLX_NO_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    environ.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu", **env})
    done = subprocess.run(
        [sys.executable, "-m", "rlx.cli", *ARGS, "--out", str(tmp_path / out)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    with open(tmp_path / out / "summary.json") as f:
        return json.load(f)["compile_cache"], done.stdout + done.stderr


def test_second_run_of_a_config_is_served_by_the_cache(tmp_path):
    first, _ = run(tmp_path, "a")
    assert first["dir"] == str(tmp_path / "cache" / "rlx" / "jax")
    assert first["requests"] >= 2 and first["hits"] == 0, first  # the chunk and the evaluation at least
    assert os.listdir(first["dir"])
    second, stdout = run(tmp_path, "b")
    assert second["requests"] == first["requests"] and second["hits"] == second["requests"], second
    assert f"compile_cache_hits={second['hits']}/{second['requests']}" in stdout


def test_the_cache_stays_off_when_asked(monkeypatch, tmp_path):
    import jax

    from rlx import compile_cache

    monkeypatch.setenv("RLX_NO_COMPILE_CACHE", "1")
    monkeypatch.setattr(compile_cache, "_directory", compile_cache._directory)  # restored after the test
    before = jax.config.jax_enable_compilation_cache
    try:
        assert compile_cache.enable() is None and compile_cache.stats() == {"dir": None, "requests": 0, "hits": 0}
        assert not jax.config.jax_enable_compilation_cache
    finally:
        jax.config.update("jax_enable_compilation_cache", before)
    args = cli._parser().parse_args(["train", "ppo", "--no-compile-cache"])
    assert args.no_compile_cache
    # JAX reads $JAX_COMPILATION_CACHE_DIR by itself: opting out must keep it from caching there too
    jax_dir = tmp_path / "jax_own"
    off, _ = run(tmp_path, "off", JAX_COMPILATION_CACHE_DIR=str(jax_dir), RLX_NO_COMPILE_CACHE="1")
    assert off["dir"] is None and not (jax_dir.exists() and os.listdir(jax_dir))
    # A directory that cannot be made: a warning, and the run goes on without the cache (it was a traceback)
    (tmp_path / "afile").write_text("")
    bad, output = run(tmp_path, "bad", RLX_COMPILE_CACHE_DIR=str(tmp_path / "afile" / "sub"))
    assert bad["dir"] is None and f"compile cache directory {tmp_path / 'afile' / 'sub'}: " in output
    assert "running without the cache" in output


def sweep(tmp_path, out):
    environ = {k: v for k, v in os.environ.items() if k not in ("RLX_NO_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    environ.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"})
    args = ["sweep", *ARGS[1:], "--seeds", "2", "--group", "agent.num_envs=4,8", "--out", str(tmp_path / out)]
    done = subprocess.run([sys.executable, "-m", "rlx.cli", *args], capture_output=True, text=True, env=environ)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / out / "summary.json") as f:
        summary = json.load(f)
    runs = {}
    for name in sorted(os.listdir(tmp_path / out / "runs")):
        with open(tmp_path / out / "runs" / name / "summary.json") as f:
            runs[name] = json.load(f)
    return summary, runs, done.stdout


def test_a_sweeps_groups_report_their_own_cache_use_and_time(tmp_path):
    """Each group's runs report that group's cache requests and wall time with its compiling (they were the
    process's running totals, and wall time left compiling out under rlx sweep but not under rlx train)."""
    summary, runs, stdout = sweep(tmp_path, "a")
    groups = {}
    for run in runs.values():
        assert run["wall_seconds"] >= run["compile_seconds"] > 0, run
        groups.setdefault(run["compile_seconds"], run["compile_cache"])
    assert len(groups) == 2, runs  # two groups, each compiled its own programs
    first, second = groups.values()
    assert first["hits"] == 0 and first["requests"] >= 2 and second["requests"] >= 2  # (a program both use may hit)
    cache = summary["compile_cache"]
    assert cache["requests"] == first["requests"] + second["requests"], summary
    assert cache["hits"] == first["hits"] + second["hits"], summary
    assert summary["compile_seconds"] == pytest.approx(sum(groups)) and summary["wall_seconds"] >= sum(groups)
    assert f"compile_cache_hits={cache['hits']}/{cache['requests']}" in stdout
    again, runs, stdout = sweep(tmp_path, "b")
    assert again["compile_cache"]["hits"] == again["compile_cache"]["requests"] == cache["requests"], again
    assert all(r["compile_cache"]["hits"] == r["compile_cache"]["requests"] > 0 for r in runs.values()), runs
    for command in ("eval", "export"):  # they compile too, and take the flag as train and sweep do
        assert cli._parser().parse_args(
            [command, "d", *(["p.npz"] if command == "export" else []), "--no-compile-cache"]
        )
