"""Load a saved run, evaluate its policy, and render a rollout to a self-contained HTML file.

Brax envs render with brax's 3D viewer (the page loads its JavaScript from a CDN when opened); every
other env renders as plots of the episode's observations, actions and rewards, embedded as a PNG.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import sys
from typing import Any

import jax
import numpy as np
from flax import struct

from rlx import driver, host
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError, to_dict
from rlx.envs import EnvStep, Vmap
from rlx.inference import acting_leaves, zero_filled_state
from rlx.rollout import first_episode_mask, unroll


def check_episodes(episodes: Any, name: str = "--episodes") -> int | None:
    """``--episodes`` (the argument ``name``) as an int (None stays None: each run's ``eval_episodes``); a
    ConfigError unless > 0."""
    if episodes is None:
        return None
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes <= 0:
        raise ConfigError(f"{name}: must be > 0; got {episodes}")
    return int(episodes)


def eval_seed(seed: int | None, chunks_done: int | None) -> int:
    """The evaluation key index ``rlx eval`` uses: ``seed`` when given, else the one training's evaluation after
    the checkpoint's chunk used (``chunks_done - 1``), so evaluating a run's newest checkpoint with its own
    ``eval_episodes`` reproduces the evaluation it logged there; 0 for a policy of no run."""
    if seed is not None:
        return seed
    return max(chunks_done - 1, 0) if chunks_done else 0


def load(run_dir: str, eval_episodes: int | None = None, what: str = "eval") -> tuple[driver.Experiment, Any, dict]:
    """``(experiment, train state, checkpoint meta)`` from the newest valid checkpoint of ``run_dir``; ``what``
    names the command or function in errors."""
    config = driver.load_run_config(run_dir, what=what)
    eval_episodes = check_episodes(eval_episodes)
    if eval_episodes is not None:
        config = dataclasses.replace(config, eval_episodes=eval_episodes)
    experiment = driver.Experiment(config)
    state, meta = restore_latest(experiment, config, run_dir)
    if host.run_status(run_dir) == "diverged":  # its newest checkpoint is from before the divergence
        print(
            f"rlx: warning: {run_dir} diverged in training; this is its last finite checkpoint (chunk "
            f"{meta['chunks_done']} of {experiment.plan.num_chunks})",
            file=sys.stderr,
        )
    return experiment, state, meta


def restore_latest(experiment: driver.Experiment, config: driver.RunConfig, run_dir: str) -> tuple[Any, dict]:
    """``(train state, checkpoint meta)`` of ``run_dir``'s newest valid checkpoint, whose run has ``config`` and
    the train state of ``experiment``; a ConfigError when there is none."""
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"))
    try:
        abstract_state = experiment.abstract_state()
        config_path = os.path.join(run_dir, "config.yaml")
        driver.check_checkpoint_config(checkpointer, config, config_path, resuming=False, abstract_state=abstract_state)
        restored = checkpointer.restore_latest_valid(abstract_state)
    finally:
        checkpointer.close()
    if restored is None:
        raise ConfigError(f"{run_dir}: no checkpoint yet (the run saves one after its first chunks)")
    return restored


def evaluate_sweep(
    sweep_dir: str, episodes: int | None = None, seed: int | None = None
) -> tuple[list[dict], list[dict]]:
    """Evaluates the newest valid checkpoint of every run of a sweep (as ``rlx eval RUN_DIR``, with ``episodes``
    deterministic episodes, default each run's ``eval_episodes``); returns one row per run (its place, swept values,
    ``status``: evaluated or why not, and the evaluation) and one per setting (IQM and 95% CI over seeds).

    The runs of a group are evaluated together, one vmapped evaluation of the train-state leaves acting reads
    (``inference.acting_leaves``: an off-policy run's replay buffer is not kept); a run whose config.yaml was
    edited away from the sweep's training fields is evaluated alone, as ``rlx eval`` would, and not counted in its
    setting's IQM (its status says why); so is a run that diverged in training (evaluated at its last finite
    checkpoint)."""
    from rlx.sweep import expand
    from rlx.sweep.runner import NOT_COUNTED, NOT_STARTED, load_spec, setting_table

    episodes = check_episodes(episodes)
    rows = []
    spec = load_spec(sweep_dir, what="eval")
    for group in expand(spec):
        config = group.config if episodes is None else dataclasses.replace(group.config, eval_episodes=episodes)
        experiment, together = None, []  # (row, acting leaves, eval key) of the runs evaluated as one
        for member in group.members:
            run_dir = os.path.join(sweep_dir, "runs", member.name)
            row = {"run": member.name, "group": member.group, "setting": member.setting, "seed": member.seed}
            row.update(member.values)
            if not os.path.exists(run_dir):  # its group comes after the one the sweep stopped in
                rows.append({**row, "status": NOT_STARTED})
                continue
            try:
                run_config = driver.load_run_config(run_dir, what="eval")
                edited = driver.training_differences(to_dict(run_config), to_dict(member.config))
                if edited:  # not the run the sweep says: evaluated as rlx eval RUN_DIR would, kept out of the IQM
                    run_experiment, state, meta = load(run_dir, episodes)
                    result = run_experiment.evaluate(state, eval_seed(seed, meta["chunks_done"]))
                    differences = driver.shown(edited, "in config.yaml", "in sweep.yaml")
                    status = f"{NOT_COUNTED}: its config.yaml differs from sweep.yaml ({differences})"
                    print(f"rlx: warning: {run_dir}: {status}", file=sys.stderr)
                    rows.append({**row, "status": status, "chunks_done": meta["chunks_done"], **result})
                    continue
                if experiment is None:
                    experiment = driver.Experiment(config)
                    acting = acting_leaves(experiment)
                run_config = dataclasses.replace(run_config, eval_episodes=config.eval_episodes)
                state, meta = restore_latest(experiment, run_config, run_dir)
            except ConfigError as e:  # not started, or no checkpoint yet: the other runs are still evaluated
                diverged = host.run_status(run_dir) == "diverged"  # before its first checkpoint: nothing to evaluate
                rows.append({**row, "status": "diverged" if diverged else f"not evaluated ({e})"})
                continue
            leaves = [np.asarray(x) for x, used in zip(jax.tree.leaves(state), acting) if used]
            status = "evaluated"
            if host.run_status(run_dir) == "diverged":  # a checkpoint from before the divergence, not a result
                status = f"{NOT_COUNTED}: diverged in training; evaluated at its last finite checkpoint"
            row = {**row, "status": status, "chunks_done": meta["chunks_done"]}
            key = driver.eval_key(member.seed, eval_seed(seed, meta["chunks_done"]))
            together.append((len(rows), row, leaves, np.asarray(key)))
            rows.append(row)
        if together:
            results = _evaluate_together(experiment, acting, [t[2] for t in together], [t[3] for t in together])
            for (index, row, _, _), result in zip(together, results):
                rows[index] = {**row, **result}
    table = setting_table(rows, spec=spec)
    for row in table:
        row.pop("chunks_done", None)
        row.pop("eval/episode_return_std", None)
        row.pop("eval/episode_length", None)
    return rows, table


def _evaluate_together(
    experiment: driver.Experiment, acting: list[bool], leaves: list[list[np.ndarray]], keys: list[np.ndarray]
) -> list[dict]:
    """``experiment.evaluate_fn`` of several runs' acting leaves at once (vmapped; the leaves acting does not read
    are zeros, which the evaluation does not depend on)."""
    abstract, treedef = jax.tree.flatten(experiment.abstract_state())
    positions = [i for i, read in enumerate(acting) if read]

    def evaluate_one(used_leaves, key):
        return experiment.evaluate_fn(zero_filled_state(abstract, treedef, positions, used_leaves), key)

    stacked = [np.stack(column) for column in zip(*leaves)]
    results = jax.device_get(jax.jit(jax.vmap(evaluate_one))(stacked, np.stack(keys)))
    return [{k: float(v[r]) for k, v in results.items()} for r in range(len(keys))]


@struct.dataclass
class Trajectory:
    """One deterministic episode, time-major; ``alive[t]`` is False after the episode ended."""

    env_steps: EnvStep  # states and outputs after each step, [T, ...]
    actions: jax.Array
    alive: jax.Array


def rollout_fn(experiment: driver.Experiment, state: Any, key: jax.Array) -> Trajectory:
    """One deterministic episode (``max_episode_steps`` steps, masked after the end); pure, for ``jax.jit``."""
    env = Vmap(experiment.eval_env, 1)
    reset_key, act_key = jax.random.split(key)
    policy, carry = experiment.eval_policy(state, 1)
    out = unroll(
        env, policy, env.reset(reset_key), carry, act_key, experiment.eval_env.max_episode_steps, record_env_steps=True
    )
    alive = first_episode_mask(out.transitions) > 0
    one = lambda x: x[:, 0]  # noqa: E731 - drop the batch of one env
    return Trajectory(jax.tree.map(one, out.env_steps), one(out.transitions.action), one(alive))


def rollout(experiment: driver.Experiment, state: Any, seed: int = 0) -> Trajectory:
    """Runs the deterministic policy for one episode (``max_episode_steps`` steps, masked after the end)."""
    return jax.jit(lambda key: rollout_fn(experiment, state, key))(jax.random.PRNGKey(seed))


def _innermost(state: Any) -> Any:
    while hasattr(state, "inner"):
        state = state.inner
    return state


def render_html(experiment: driver.Experiment, trajectory: Trajectory, path: str) -> str:
    """Writes the rollout as an HTML page at ``path`` and returns ``path``."""
    length = int(np.sum(np.asarray(trajectory.alive)))
    env = experiment.env
    title = f"rlx rollout: {experiment.config.algo} on {env.name}, return {float(np.sum(np.asarray(trajectory.env_steps.reward)[:length])):.2f} over {length} steps"
    base = getattr(env, "unwrapped", env)
    if env.name.startswith("brax/") and hasattr(base, "_env"):
        from brax.io import html

        pipeline_states = _innermost(trajectory.env_steps.state).pipeline_state
        frames = [jax.tree.map(lambda x, i=i: x[i], pipeline_states) for i in range(length)]
        brax_env = base._env
        page = html.render(brax_env.sys.tree_replace({"opt.timestep": brax_env.dt}), frames)
        page = page.replace("<title>Brax visualizer</title>", f"<title>{title}</title>", 1)
    else:
        page = _trace_page(title, trajectory, length)
    with open(path, "w") as f:
        f.write(page)
    return path


def _trace_page(title: str, trajectory: Trajectory, length: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    leaves = jax.tree.leaves(trajectory.env_steps.obs)  # a flat observation, or a dict's entries in key order
    obs = np.concatenate([np.asarray(x)[:length].reshape(length, -1) for x in leaves], axis=1)
    actions = np.asarray(trajectory.actions)[:length].reshape(length, -1)
    rewards = np.asarray(trajectory.env_steps.reward)[:length]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for i in range(min(obs.shape[1], 12)):
        axes[0].plot(obs[:, i], label=f"obs[{i}]")
    axes[0].set_ylabel("observation")
    axes[0].legend(fontsize=7, ncol=4)
    axes[1].step(np.arange(length), actions, where="post")
    axes[1].set_ylabel("action")
    axes[2].plot(np.cumsum(rewards))
    axes[2].set_ylabel("cumulative reward")
    axes[2].set_xlabel("step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    image = base64.b64encode(buffer.getvalue()).decode()
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h3>{title}</h3><img alt='rollout' src='data:image/png;base64,{image}'></body></html>"
    )
