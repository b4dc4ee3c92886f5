"""Helpers shared by the test modules."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from rlx import driver, presets

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


def preset(name, **overrides):
    """The RunConfig of ``configs/<name>`` with top-level fields replaced by ``overrides``."""
    data = presets.load_file(os.path.join(CONFIGS, name))
    data.update(overrides)
    return driver.build_config(data)


def small_dqn(num_chunks=2, algo="dqn", **agent):
    """A DQN (or ``algo``: iqn) run of 640 CartPole steps (8 envs, batches of 16, a 400-transition buffer, learning
    from step 64) with ``agent`` fields over those: seconds to compile and train, for option and plumbing tests."""
    base = {"num_envs": 8, "batch_size": 16, "buffer_size": 400, "learning_starts": 64}
    data = {"algo": algo, "total_env_steps": 640, "num_chunks": num_chunks, "eval_episodes": 2}
    return driver.build_config({**data, "agent": {**base, **agent}})


def quantile_huber_numpy(taken, target, fractions, kappa):
    """The quantile Huber loss of one sample in NumPy: ``taken [N]`` quantiles at ``fractions [N]`` against the
    ``target [N']`` samples, summed over ``i`` and averaged over ``j`` (IQN's eq. 3)."""
    total = 0.0
    for i in range(len(taken)):
        u = target - taken[i]
        huber = np.where(np.abs(u) <= kappa, 0.5 * u**2, kappa * (np.abs(u) - 0.5 * kappa))
        total += np.mean(np.abs(fractions[i] - (u < 0)) * huber / kappa)
    return total


def log_softmax_numpy(logits):
    """NumPy reference: ``log softmax`` over the last axis (shifted by the max, so large logits stay finite)."""
    z = logits - np.max(logits, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def tree_equal(a, b):
    """Bitwise equality of two pytrees with the same structure."""
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def assert_resumes_bitwise(exp, state, directory):
    """Saves ``state`` (the train state after ``exp``'s first chunk) to ``directory``, restores it, checks the round
    trip is bitwise, then runs the second chunk from both and checks they agree bitwise. Returns the resumed state."""
    from rlx.checkpoint import Checkpointer

    checkpointer = Checkpointer(str(directory))
    checkpointer.save(1, state, {"chunks_done": 1})
    checkpointer.wait()
    restored, meta = checkpointer.restore(1, exp.abstract_state())
    checkpointer.close()
    assert meta["chunks_done"] == 1 and tree_equal(restored, state)
    uninterrupted, _ = exp.run_chunk(jax.tree.map(jnp.copy, state), 1)  # run_chunk donates its input
    resumed, _ = exp.run_chunk(jax.device_put(restored), 1)
    assert tree_equal(resumed, uninterrupted)
    return resumed


def subprocess_env(cache_dir):
    """Environment for ``python -m rlx.cli`` subprocesses sharing a persistent JAX compilation cache."""
    return {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache_dir),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PLATFORMS": "cpu",
    }


def final_row(config, chunks=None):
    """The last logged row of one run of ``config`` (one seed, trained in process like ``rlx train``). With
    ``chunks``, the run stops after its first ``chunks`` chunks (``rlx train --stop-after-chunks``): it is still
    planned to its whole length, so every number up to there, schedules over the length included, is the whole
    run's, and the row is the one the whole run logs after that chunk."""
    return driver.train(config, None, progress=False, stop_after_chunks=chunks).rows[-1]


def final_rows(config, seeds=(0, 1, 2), chunks=None):
    """Each seed's final row (``eval/episode_return``, ``train/episode_return``, ...) of ``config``, the seeds
    trained together as one vmapped sweep: a learning assertion on the median over seeds holds on any CPU,
    where one seed's trajectory depends on the kernels XLA picks (see README: Tested results). With ``chunks``,
    the rows after the first ``chunks`` chunks of the whole planned run (as :func:`final_row`)."""
    from rlx import sweep
    from rlx.config import to_dict

    spec = sweep.spec_from_dict({"config": to_dict(config), "seeds": list(seeds)})
    return sweep.run(spec, None, progress=False, stop_after_chunks=chunks).runs


def median(rows, metric="eval/episode_return"):
    return float(np.median([row[metric] for row in rows]))


def interrupting_evaluate(chunk_index, error=KeyboardInterrupt):
    """A stand-in for ``driver.Experiment.evaluate`` that raises ``error`` (default Ctrl-C) at ``chunk_index``'s
    evaluation and evaluates as usual elsewhere (monkeypatch it onto ``driver.Experiment``)."""
    evaluate = driver.Experiment.evaluate

    def interrupting(self, state, index):
        if index == chunk_index:
            raise error
        return evaluate(self, state, index)

    return interrupting
