"""The separate virtual environment brax.training runs in, built once and reused.

brax.training 0.14.2 calls ``jax.device_put_replicated``, which jax 0.10 removed, so it cannot run in
the rlx venv. This builds ``.bench/brax-venv`` (gitignored) with jax 0.9.2 and brax 0.14.2; mujoco and
mujoco-mjx are pinned to the versions installed next to rlx, so both sides step the same physics code;
flax and optax are whatever pip resolves for jax 0.9.2 (flax >= 0.12.8 needs jax >= 0.10). flashbax and
chex (pinned likewise) let rlx itself run there too, from this checkout, as a same-jax control
(``rlx_side.py`` as a worker). On a GPU the jax CUDA extra of the rlx venv is added.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV_DIR = os.path.join(REPO, ".bench", "brax-venv")
PINNED = ("jax==0.9.2", "jaxlib==0.9.2", "brax==0.14.2")
SAME_AS_RLX = ("mujoco", "mujoco-mjx", "flashbax", "chex")
STAMP = "rlx-bench-requirements.txt"


def requirements() -> list[str]:
    """Pip requirement strings of the brax venv, derived from the pins and this (rlx) environment."""
    reqs = list(PINNED)
    for plugin, extra in (("jax-cuda13-plugin", "cuda13"), ("jax-cuda12-plugin", "cuda12")):
        if _installed(plugin):
            reqs[0] = f"jax[{extra}]==0.9.2"
            break
    reqs += [f"{name}=={_installed(name)}" for name in SAME_AS_RLX if _installed(name)]
    return reqs


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_path(venv_dir: str = VENV_DIR) -> str:
    return os.path.join(venv_dir, "bin", "python")


def ensure(venv_dir: str = VENV_DIR) -> str:
    """Builds the venv unless it already holds exactly ``requirements()``; returns its python.

    Exits with a one-line message (and the pip log's path) if it cannot be built, e.g. offline."""
    reqs = requirements()
    stamp = os.path.join(venv_dir, STAMP)
    wanted = "\n".join(reqs) + "\n"
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return python_path(venv_dir)
    os.makedirs(os.path.dirname(venv_dir), exist_ok=True)
    log_path = venv_dir + "-build.log"
    print(
        f"bench: building the brax venv at {venv_dir} ({' '.join(reqs)}); log: {log_path}", file=sys.stderr, flush=True
    )
    with open(log_path, "w") as log:
        steps = [
            [sys.executable, "-m", "venv", venv_dir],
            [python_path(venv_dir), "-m", "pip", "install", "--upgrade", "pip"],
            [python_path(venv_dir), "-m", "pip", "install", *reqs],
        ]
        for command in steps:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                sys.exit(
                    f"bench: cannot build the brax venv at {venv_dir}: `{' '.join(command[-3:])}` failed "
                    f"(offline or no matching wheel?); see {log_path}"
                )
    with open(stamp, "w") as f:
        f.write(wanted)
    return python_path(venv_dir)


if __name__ == "__main__":
    print(ensure())
