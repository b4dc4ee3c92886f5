"""The persistent compilation cache the CLI turns on: a second run of a config loads its programs."""

import json
import os
import subprocess
import sys

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
