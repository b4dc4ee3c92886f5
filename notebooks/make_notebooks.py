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
        "reloaded policy, render a rollout and export the policy alone. Everything a run needs lives in one pytree (`result.state`), and\n"
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
        "import jax, numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "from rlx import driver, evaluate, presets\n"
        "from rlx.envs import parse_env_spec\n"
        "from rlx.metrics_log import read_metrics\n\n"
        "data = presets.load(PRESET)   # a packaged preset's name or a YAML path; `extends:` chains resolved\n"
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
    new_markdown_cell(
        "## The policy alone\n\n`rlx.inference` keeps only what acting reads (here PPO's policy network and the\n"
        "observation statistics if any: not the value network or optimizer state) and maps raw observations to\n"
        "actions. It saves to one `.npz` file (`rlx export RUN_DIR policy.npz`) that evaluates as the run does,\n"
        "and that also acts with JAX and NumPy alone (no rlx, no env package): it holds the policy as a\n"
        "`jax.export` program."
    ),
    new_code_cell(
        "from rlx import inference\n"
        "policy = inference.from_run(run_dir)\n"
        "policy_path = policy.save(os.path.join(OUTPUT_DIR, 'policy.npz'), overwrite=True)\n"
        "print(len(policy.paths), 'arrays,', policy.nbytes, 'bytes:', ', '.join(policy.paths[:3]), '...')\n"
        "loaded = inference.load(policy_path)\n"
        "obs = trajectory.env_steps.obs[:5]   # five observations of the rollout above\n"
        "print('actions', loaded(obs), 'first alone', loaded(obs[0]))\n"
        "assert loaded.evaluate(seed=0) == experiment.evaluate(state, chunk_index=0)   # the same numbers, bitwise"
    ),
    new_code_cell(
        "import jax, numpy as np   # what a deployment needs: no rlx\n"
        "with np.load(policy_path) as f:\n"
        "    program = jax.export.deserialize(f['__rlx_program__'].tobytes())\n"
        "    leaves = {k: f[k] for k in f.files if k.startswith('leaf_')}\n"
        "print(program.platforms, program.call(leaves, obs))\n"
        "assert (program.call(leaves, obs) == loaded(obs)).all()   # bitwise, any batch size"
    ),
]

sweep = [
    new_markdown_cell(
        "# Seeds x learning rates in one compiled call\n\n"
        "`rlx.sweep` trains every (seed, setting) pair together: one `jax.vmap` over train states whose traced\n"
        "hyperparameters (`state.hparams`) differ, sharded over all devices. Each run still gets its own run\n"
        "directory (metrics, checkpoints, summary). We compare settings with the interquartile mean (IQM) and\n"
        "stratified-bootstrap 95% CIs. The same sweep from a shell: `rlx sweep ppo --config\n"
        "configs/ppo_cartpole.yaml --seeds 8 --grid agent.learning_rate=1e-4,3e-4,1e-3` then `rlx plot DIR`."
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
        "from IPython.display import Image, Markdown, display\n"
        "from rlx import evaluate, plot, sweep\n\n"
        "spec = sweep.spec_from_dict({\n"
        "    'base': '../configs/ppo_cartpole.yaml',\n"
        "    'config': {'total_env_steps': TOTAL_ENV_STEPS, 'num_chunks': NUM_CHUNKS, 'tensorboard': False},\n"
        "    'seeds': SEEDS,\n"
        "    'grid': {'agent.learning_rate': LEARNING_RATES},\n"
        "})\n"
        "groups = sweep.expand(spec)  # validated before anything compiles\n"
        "print(len(groups), 'compiled group(s),', len(groups[0].members), 'runs in one batch')"
    ),
    new_code_cell(
        "result = sweep.run(spec, OUTPUT_DIR, overwrite=True, progress=False)\n"
        "display(Markdown(sweep.markdown_table(sweep.setting_table(result.runs))))"
    ),
    new_code_cell("for path in plot.plot_sweep(OUTPUT_DIR):\n    display(Image(path))"),
    new_markdown_cell(
        "Do the settings differ, or is it the seeds? `rlx.compare` (the `rlx compare` command) puts each setting\n"
        "against the first: the IQM difference and the probability that a run of one scores higher than a run of the\n"
        "other, each with a 95% bootstrap interval over seeds, and whether the difference's interval excludes 0."
    ),
    new_code_cell("from rlx import compare\n\ndisplay(Markdown(compare.table(compare.compare([OUTPUT_DIR]))))"),
    new_markdown_cell(
        "Every run is an ordinary run directory: load the best setting's first seed and evaluate it again."
    ),
    new_code_cell(
        "best = max(sweep.setting_table(result.runs), key=lambda row: row['eval/episode_return IQM'])\n"
        "member = next(r for r in result.runs if r['setting'] == best['setting'])\n"
        "experiment, state, meta = evaluate.load(f\"{OUTPUT_DIR}/runs/{member['run']}\")\n"
        "print(member['run'], 'learning rate', experiment.config.agent.learning_rate,\n"
        "      'eval return', round(experiment.evaluate(state, 0)['eval/episode_return'], 1))"
    ),
]

for name, cells in (("quickstart", quickstart), ("sweep", sweep)):
    for index, cell in enumerate(cells):  # stable ids (nbformat draws random ones): regenerating changes nothing
        cell.id = f"{name}-{index:02d}"
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, os.path.join(HERE, f"{name}.ipynb"))
