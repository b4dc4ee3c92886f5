"""Writes the notebooks in this folder from their cell sources (run: python notebooks/make_notebooks.py).
Keeping the sources here makes the notebooks reviewable as code; the .ipynb files are what users open."""

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))


def parameters(source):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


quickstart = [
    new_markdown_cell(
        "# rlx quickstart\n\n"
        "Train PPO with the Python API, plot the learning curve, reload the checkpoint from disk, evaluate the\n"
        "reloaded policy and render a rollout. Everything a run needs lives in one pytree (`result.state`), and\n"
        "the run directory holds `config.yaml`, `metrics.jsonl` and Orbax `checkpoints/`."
    ),
    parameters(
        "# Parameters (the tests run this notebook with a smaller budget)\n"
        "ENV = 'gymnax/CartPole-v1'      # e.g. 'brax/inverted_pendulum?backend=positional' (3D viewer)\n"
        "PRESET = '../configs/ppo_cartpole.yaml'\n"
        "TOTAL_ENV_STEPS = 524_288\n"
        "OUTPUT_DIR = 'runs/quickstart'"
    ),
    new_code_cell(
        "import os, shutil\n"
        "import jax, numpy as np, yaml\n"
        "import matplotlib.pyplot as plt\n"
        "from rlx import driver, evaluate\n"
        "from rlx.envs import parse_env_spec\n"
        "from rlx.metrics_log import read_metrics\n\n"
        "with open(PRESET) as f:\n"
        "    data = yaml.safe_load(f)\n"
        "data.update(env=parse_env_spec(ENV), total_env_steps=TOTAL_ENV_STEPS, num_chunks=8)\n"
        "config = driver.build_config(data)   # validated: a bad field raises a one-line ConfigError here\n"
        "run_dir = os.path.join(OUTPUT_DIR, 'run')\n"
        "shutil.rmtree(run_dir, ignore_errors=True)\n"
        "config.agent"
    ),
    new_code_cell(
        "result = driver.train(config, run_dir, progress=False)\n"
        "print(result.status, result.rows[-1]['env_steps'], 'env steps; final eval return',\n"
        "      result.rows[-1]['eval/episode_return'], '; compile', round(result.experiment.compile_seconds, 1), 's')"
    ),
    new_markdown_cell("## Learning curve (from the run directory's `metrics.jsonl`)"),
    new_code_cell(
        "rows = read_metrics(run_dir)\n"
        "steps = [r['env_steps'] for r in rows]\n"
        "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
        "ax.plot(steps, [r['train/episode_return'] for r in rows], label='train (stochastic policy)')\n"
        "ax.plot(steps, [r['eval/episode_return'] for r in rows], 'o-', label='eval (deterministic)')\n"
        "ax.set_xlabel('env steps'); ax.set_ylabel('episode return'); ax.set_title(f'PPO on {ENV}'); ax.legend()\n"
        "fig.tight_layout(); fig.savefig(os.path.join(OUTPUT_DIR, 'learning_curve.png'), dpi=100)\n"
        "plt.show()"
    ),
    new_markdown_cell("## Reload the checkpoint and evaluate the reloaded policy"),
    new_code_cell(
        "experiment, state, meta = evaluate.load(run_dir)   # newest checkpoint, checksum-verified\n"
        "same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(result.state)))\n"
        "print('checkpoint', meta['chunks_done'], 'restores the in-memory state bit for bit:', same)\n"
        "assert same\n"
        "experiment.evaluate(state, chunk_index=0)"
    ),
    new_markdown_cell(
        "## Rollout\n\nBrax envs render in brax's 3D viewer (the page loads its JavaScript from a CDN); other envs as\n"
        "plots of observations, actions and reward. The same is `rlx eval RUN_DIR --render out.html`."
    ),
    new_code_cell(
        "from IPython.display import HTML, display\n"
        "trajectory = evaluate.rollout(experiment, state, seed=0)\n"
        "path = evaluate.render_html(experiment, trajectory, os.path.join(OUTPUT_DIR, 'rollout.html'))\n"
        "print('return', float(trajectory.env_steps.reward[trajectory.alive].sum()), '->', path)\n"
        "display(HTML(open(path).read()) if not ENV.startswith('brax/') else HTML(f'<a href=\"{path}\">{path}</a>'))"
    ),
]

sweep = [
    new_markdown_cell(
        "# Seeds x learning rates in one compiled call\n\n"
        "The chunk function is pure in the train state, so `jax.vmap` over a batch of states runs many seeds\n"
        "and hyperparameter settings at once: the traced hyperparameters (`state.hparams`) are just arrays.\n"
        "We then compare settings with the interquartile mean (IQM) and stratified-bootstrap 95% CIs."
    ),
    parameters(
        "# Parameters (the tests run this notebook with a smaller budget)\n"
        "SEEDS = 8\n"
        "LEARNING_RATES = [1e-4, 3e-4, 1e-3]\n"
        "TOTAL_ENV_STEPS = 262_144\n"
        "NUM_CHUNKS = 8\n"
        "OUTPUT_DIR = 'runs/sweep'"
    ),
    new_code_cell(
        "import os\n"
        "import jax, jax.numpy as jnp, numpy as np, yaml\n"
        "import matplotlib.pyplot as plt\n"
        "from rlx import driver\n"
        "from rlx.stats import bootstrap_ci\n\n"
        "os.makedirs(OUTPUT_DIR, exist_ok=True)\n"
        "with open('../configs/ppo_cartpole.yaml') as f:\n"
        "    data = yaml.safe_load(f)\n"
        "data.update(total_env_steps=TOTAL_ENV_STEPS, num_chunks=NUM_CHUNKS)\n"
        "experiment = driver.Experiment(driver.build_config(data))\n"
        "runs = [(seed, lr) for lr in LEARNING_RATES for seed in range(SEEDS)]\n"
        "keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), 0) for seed, _ in runs])\n"
        "states = jax.vmap(experiment.init_fn)(keys)\n"
        "lrs = jnp.array([lr for _, lr in runs], jnp.float32)\n"
        "states = states.replace(hparams=states.hparams.replace(learning_rate=lrs))\n"
        "print(len(runs), 'runs in one batch; traced fields:', list(states.hparams.__dataclass_fields__))"
    ),
    new_code_cell(
        "chunk = jax.jit(jax.vmap(experiment.chunk_fn, in_axes=(0, None)))\n"
        "evaluate = jax.jit(jax.vmap(experiment.evaluate_fn, in_axes=(0, None)))\n"
        "plan = experiment.plan\n"
        "curves, steps = [], []\n"
        "for i in range(plan.num_chunks):\n"
        "    active = plan.iterations_done(i + 1) - plan.iterations_done(i)\n"
        "    states, metrics = chunk(states, jnp.int32(active))\n"
        "    returns = evaluate(states, jax.random.PRNGKey(i))['eval/episode_return']\n"
        "    curves.append(np.asarray(returns)); steps.append(plan.env_steps(i + 1))\n"
        "curves = np.stack(curves, axis=1).reshape(len(LEARNING_RATES), SEEDS, plan.num_chunks)\n"
        "curves.shape  # [learning rate, seed, chunk]"
    ),
    new_code_cell(
        "fig, (ax, bar) = plt.subplots(1, 2, figsize=(10, 3.8))\n"
        "finals = []\n"
        "for h, lr in enumerate(LEARNING_RATES):\n"
        "    stats = np.array([bootstrap_ci(curves[h, :, c], num_resamples=500) for c in range(plan.num_chunks)])\n"
        "    ax.plot(steps, stats[:, 0], label=f'lr {lr:g}')\n"
        "    ax.fill_between(steps, stats[:, 1], stats[:, 2], alpha=0.25)\n"
        "    finals.append(stats[-1])\n"
        "ax.set_xlabel('env steps'); ax.set_ylabel('eval return (IQM, 95% CI)'); ax.legend()\n"
        "finals = np.array(finals)\n"
        "labels = [f'{lr:g}' for lr in LEARNING_RATES]\n"
        "bar.bar(labels, finals[:, 0], yerr=[finals[:, 0] - finals[:, 1], finals[:, 2] - finals[:, 0]], capsize=4)\n"
        "bar.set_xlabel('learning rate'); bar.set_ylabel('final eval return (IQM)')\n"
        "fig.suptitle(f'PPO on CartPole-v1, {SEEDS} seeds per setting, one compiled call')\n"
        "fig.tight_layout(); fig.savefig(os.path.join(OUTPUT_DIR, 'sweep_iqm.png'), dpi=100)\n"
        "plt.show()\n"
        "{lr: (round(f[0], 1), round(f[1], 1), round(f[2], 1)) for lr, f in zip(LEARNING_RATES, finals)}"
    ),
]

for name, cells in (("quickstart", quickstart), ("sweep", sweep)):
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, os.path.join(HERE, f"{name}.ipynb"))
