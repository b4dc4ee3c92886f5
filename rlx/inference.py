"""A trained policy on its own: the train-state leaves its actions read, with the run's config.

``from_run(run_dir)`` takes them from a run's newest checkpoint (``from_state`` from a state in memory);
``Policy.save(path)`` writes them to one ``.npz`` file, without what acting never reads (an off-policy run's
replay buffer, optimizer states, critics and target networks); ``load(path)`` reads the file back, rebuilding the
env and algorithm from the config stored in it. A policy maps raw observations to env actions, normalizing them
with the run's statistics as training did::

    policy = inference.from_run("runs/sac")
    policy.save("sac_pendulum.npz")
    policy = inference.load("sac_pendulum.npz")
    action = policy(obs)                      # deterministic; one observation or a batch [B, ...]
    action = policy(obs, key)                 # sampled from the policy
    memory = policy.initial_memory(batch)     # recurrent policies:
    action, memory = policy.step(obs, memory, starts)

The file also holds the deterministic policy as a serialized ``jax.export`` program (:meth:`Policy.program`),
which acts with JAX alone: ``jax.export.deserialize(f["__rlx_program__"].tobytes()).call(leaves, obs)``.

Which leaves acting reads is found by tracing the algorithm's ``act`` (and ``act_step``) and keeping the inputs
its outputs depend on, so every algorithm works without saying what its policy is made of.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import weakref
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import export
from jax.extend.core import ClosedJaxpr, Jaxpr, Var

from rlx import driver
from rlx.config import ConfigError, to_dict

try:  # JAX's dead-code elimination knows every primitive (scan, cond, while, jit); private, hence the fallback
    from jax._src.interpreters.partial_eval import dce_jaxpr
except ImportError:  # pragma: no cover - a JAX that moved it
    dce_jaxpr = None

FORMAT = "rlx-policy/1"
META_KEY = "__rlx_policy__"
PROGRAM_KEY = "__rlx_program__"  # the deterministic policy as a serialized jax.export program (Policy.program)
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _input_dependence(jaxpr: Jaxpr, outputs: list[bool] | None = None) -> list[bool]:
    """Which inputs of ``jaxpr`` the chosen ``outputs`` (default all) or its effects depend on; a nested ``jit``
    is looked into, any other nested program counts as reading all its inputs (JAX's ``dce_jaxpr`` is used where
    it can be imported: it also looks into ``scan``, through which a recurrent policy reads a dict's entries)."""
    outputs = [True] * len(jaxpr.outvars) if outputs is None else outputs
    needed = {v for v, wanted in zip(jaxpr.outvars, outputs) if wanted and isinstance(v, Var)}
    for eqn in reversed(jaxpr.eqns):
        wanted = [v in needed for v in eqn.outvars]
        if not eqn.effects and not any(wanted):
            continue
        inner = eqn.params.get("jaxpr") if eqn.primitive.name in ("pjit", "jit", "closed_call") else None
        if isinstance(inner, (ClosedJaxpr, Jaxpr)) and not eqn.effects:
            reads = _input_dependence(inner.jaxpr if isinstance(inner, ClosedJaxpr) else inner, wanted)
        else:
            reads = [True] * len(eqn.invars)
        needed.update(v for v, read in zip(eqn.invars, reads) if read and isinstance(v, Var))
    return [v in needed for v in jaxpr.invars]


def _describe(tree: Any, batch: str | None) -> str:
    """Shapes of observations, ``[B, 3] or [3]`` for ``batch`` None, else with ``batch`` as the first axis."""

    def shape(x):
        dims = [str(d) for d in x.shape]
        if batch is not None:
            return f"[{', '.join([batch, *dims])}]"
        return f"[{', '.join(['B', *dims])}] or [{', '.join(dims)}]"

    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k}: {shape(v)}" for k, v in tree.items()) + "}"
    return shape(tree)


@dataclasses.dataclass(eq=False)  # hashable by identity: jax.jit(policy) works
class Policy:
    """The policy of one run: its experiment (config, env, algorithm) and the leaves of the train state that
    acting reads. ``leaves[i]`` is the leaf at ``paths[i]`` (``jax.tree_util.keystr`` of the state)."""

    experiment: driver.Experiment = dataclasses.field(repr=False)
    paths: tuple[str, ...]
    leaves: tuple[jax.Array, ...] = dataclasses.field(repr=False)
    source: dict  # where the leaves came from: run_dir, chunks_done, env_steps (empty for a state in memory)

    def __post_init__(self):
        abstract = self.experiment.abstract_state()
        flat, self._treedef = jax.tree_util.tree_flatten_with_path(abstract)
        self._abstract = [leaf for _, leaf in flat]
        index = {jax.tree_util.keystr(path): i for i, (path, _) in enumerate(flat)}
        self._positions = [index[p] for p in self.paths]
        self.recurrent = self.experiment.initial_memory(1) is not None
        self.observation_spec = _observation_spec(self.experiment)
        self.observation_keys = None  # dict observations: the entries acting reads (see _batch)
        if isinstance(self.observation_spec, dict):
            reads = acting_inputs(self.experiment)[1]
            self.observation_keys = tuple(k for k, read in zip(sorted(self.observation_spec), reads) if read)
        self._act = jax.jit(self._act_fn, static_argnames="deterministic")
        self._evaluate = jax.jit(lambda leaves, key: self.experiment.evaluate_fn(self.state(leaves), key))
        self._rollout = None
        self._by_episodes = {}

    @property
    def config(self) -> driver.RunConfig:
        return self.experiment.config

    def state(self, leaves: tuple | None = None) -> Any:
        """A train state with ``leaves`` (default: this policy's) where acting reads and zeros elsewhere, for use
        inside a traced function (``algo.act``, ``experiment.evaluate_fn``), where the zeros cost nothing: acting
        may compute with those leaves (a recurrent policy normalizes every entry of a dict observation), but its
        actions do not depend on them, so XLA drops them."""
        return zero_filled_state(
            self._abstract, self._treedef, self._positions, self.leaves if leaves is None else leaves
        )

    def _act_fn(self, leaves, obs, starts, memory, key, deterministic):
        return _actions(self.experiment, self.state(leaves), obs, starts, memory, key, deterministic)

    def _batch(self, obs: Any) -> tuple[Any, bool]:
        """``obs`` as a batch in the env's dtypes, and whether it was one observation; a one-line ValueError when
        it is neither one observation nor a batch of them. Entries of a dict observation that acting never reads
        (a privileged critic's state, which a deployed robot does not have) may be left out: they are zeros."""
        spec = self.observation_spec
        if isinstance(spec, dict) != isinstance(obs, dict) or (
            isinstance(spec, dict) and not set(self.observation_keys) <= set(obs) <= set(spec)
        ):
            raise ValueError(f"obs: expected {self._expected()}; got {_describe_given(obs)}")
        if isinstance(spec, dict):
            spec = {k: spec[k] for k in obs}
        obs = jax.tree.map(lambda s, x: jnp.asarray(x, s.dtype), spec, obs)  # spec first: a list is one leaf
        pairs = list(zip(jax.tree.leaves(obs), jax.tree.leaves(spec)))
        if all(x.shape == s.shape for x, s in pairs):
            single, obs = True, jax.tree.map(lambda x: x[None], obs)
        else:
            sizes = {x.shape[0] for x, _ in pairs if x.ndim}
            if len(sizes) != 1 or not all(x.shape[1:] == s.shape for x, s in pairs):
                raise ValueError(f"obs: expected {self._expected()}; got {_describe_given(obs)}")
            single = False
        return self._filled(obs), single

    def _filled(self, obs: Any) -> Any:
        """A batch of dict observations with the entries left out (which acting does not read) as zeros."""
        if not isinstance(self.observation_spec, dict):
            return obs
        size = jax.tree.leaves(obs)[0].shape[0]
        zeros = {k: jnp.zeros((size, *s.shape), s.dtype) for k, s in self.observation_spec.items() if k not in obs}
        return {**zeros, **obs}

    def _expected(self) -> str:
        """The observations this policy takes, for error messages."""
        expected = f"{_describe(self.observation_spec, None)} ({self.config.env.name})"
        unread = [k for k in self.observation_spec if k not in self.observation_keys] if self.observation_keys else []
        if unread:
            expected += f"; {', '.join(unread)} may be left out (acting does not read it)"
        return expected

    def _empty_actions(self, obs: Any) -> jax.Array:
        """The actions for an empty batch of observations: none, with the shape and dtype of one's."""
        one = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype), obs)
        memory = self.initial_memory(1)
        starts = None if memory is None else jax.ShapeDtypeStruct((1,), bool)
        shape = jax.eval_shape(
            lambda leaves, o, st, m, k: self._act_fn(leaves, o, st, m, k, True),
            self.leaves,
            one,
            starts,
            memory,
            _key(None),
        )[0]
        return jnp.zeros((0, *shape.shape[1:]), shape.dtype)

    def __call__(self, obs: Any, key: jax.Array | None = None, deterministic: bool | None = None) -> jax.Array:
        """Env actions for one observation or a batch ``[B, ...]`` of them: the policy's evaluation action
        (``deterministic``, the default without ``key``) or a sample (the default with one). Recurrent policies keep
        a memory: use :meth:`step`. (Consistency AC's evaluation action also draws its candidate actions with the
        key; without one, with ``PRNGKey(0)``.)"""
        if self.recurrent:
            raise ValueError(
                "this policy is recurrent: memory = policy.initial_memory(batch); action, memory = "
                "policy.step(obs, memory, starts)"
            )
        batch, single = self._batch(obs)
        deterministic = _deterministic(key, deterministic)
        if jax.tree.leaves(batch)[0].shape[0] == 0:
            return self._empty_actions(batch)
        action, _ = self._act(self.leaves, batch, None, None, _key(key), deterministic=deterministic)
        return action[0] if single else action

    def initial_memory(self, batch_size: int) -> Any:
        """A recurrent policy's memory at the start of ``batch_size`` episodes (None for a feed-forward one)."""
        return self.experiment.initial_memory(batch_size)

    def step(
        self, obs: Any, memory: Any, starts: Any = None, key: jax.Array | None = None, deterministic: bool | None = None
    ) -> tuple[jax.Array, Any]:
        """``(actions, next memory)`` of a recurrent policy for a batch ``[B, ...]`` of observations; ``starts``
        ``[B]`` (default none) marks observations that begin an episode, whose memory is reset first."""
        if not self.recurrent:
            return self(obs, key, deterministic), memory
        if memory is None or jax.tree.structure(memory) != jax.tree.structure(self.initial_memory(1)):
            raise ValueError("memory: expected policy.initial_memory(batch_size), then what step returned")
        batch, single = self._batch(obs)
        if single:
            raise ValueError(f"obs: a recurrent policy steps a batch; expected {_describe(self.observation_spec, 'B')}")
        size = jax.tree.leaves(batch)[0].shape[0]
        sizes = {x.shape[0] for x in jax.tree.leaves(memory)}
        if sizes != {size}:
            raise ValueError(f"memory: for {sorted(sizes)} envs; the observations are {size}: initial_memory({size})")
        starts = jnp.zeros((size,), bool) if starts is None else jnp.asarray(starts, bool)
        if starts.shape != (size,):
            raise ValueError(f"starts: expected shape ({size},), one per observation; got {starts.shape}")
        deterministic = _deterministic(key, deterministic)
        if size == 0:
            return self._empty_actions(batch), memory
        return self._act(self.leaves, batch, starts, memory, _key(key), deterministic=deterministic)

    def evaluate(self, seed: int = 0, episodes: int | None = None) -> dict:
        """``rlx eval``'s numbers: ``episodes`` (default: the run's ``eval_episodes``) deterministic episodes with
        the evaluation key of ``seed``."""
        if episodes is not None and episodes not in self._by_episodes:  # one compiled evaluation per count
            self._by_episodes[episodes] = self.with_eval_episodes(episodes)
        policy = self if episodes is None else self._by_episodes[episodes]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise ConfigError(f"seed: must be an integer >= 0 and < {2**32}; got {seed!r}")
        key = driver.eval_key(self.config.seed, int(seed))
        return {k: float(v) for k, v in jax.device_get(policy._evaluate(policy.leaves, key)).items()}

    def rollout(self, seed: int = 0) -> Any:
        """One deterministic episode as an ``evaluate.Trajectory`` (for ``evaluate.render_html``)."""
        from rlx import evaluate

        if self._rollout is None:
            self._rollout = jax.jit(lambda leaves, key: evaluate.rollout_fn(self.experiment, self.state(leaves), key))
        return self._rollout(self.leaves, jax.random.PRNGKey(seed))

    def program(self) -> export.Exported:
        """The deterministic policy as one ``jax.export`` program, for any batch size and for CPU, CUDA, ROCm and
        TPU: ``program.call(leaves, obs)`` returns ``policy(obs)`` (bitwise), ``leaves`` the dict ``{"leaf_0":
        ..., "leaf_1": ...}`` of a saved file's arrays, ``obs`` a batch ``[B, ...]`` (a dict of the entries in
        :attr:`observation_keys`). A recurrent policy's is ``program.call(leaves, obs, memory, starts)`` ->
        ``(actions, memory)``, ``memory`` a list of arrays ``[B, ...]``, zeros at an episode's start.
        :meth:`save` stores it serialized, so the file acts with JAX alone (no rlx, no env). The leaves are
        arguments, not constants: XLA folds constants in other float32 roundings."""
        batch = export.symbolic_shape("b")
        spec, key = self.observation_spec, jax.random.PRNGKey(0)  # as policy(obs)
        if isinstance(spec, dict):
            obs = {k: jax.ShapeDtypeStruct((*batch, *spec[k].shape), spec[k].dtype) for k in self.observation_keys}
        else:
            obs = jax.ShapeDtypeStruct((*batch, *spec.shape), spec.dtype)
        leaves = {f"leaf_{i}": jax.ShapeDtypeStruct(x.shape, x.dtype) for i, x in enumerate(self.leaves)}

        def in_order(leaves: dict) -> tuple:
            return tuple(leaves[f"leaf_{i}"] for i in range(len(self.leaves)))

        if not self.recurrent:

            def act(leaves, obs):
                return self._act_fn(in_order(leaves), self._filled(obs), None, None, key, True)[0]

            return export.export(jax.jit(act), platforms=PLATFORMS)(leaves, obs)
        memory, memory_def = jax.tree.flatten(self.initial_memory(1))

        def step(leaves, obs, memory, starts):
            memory = jax.tree.unflatten(memory_def, memory)
            actions, after = self._act_fn(in_order(leaves), self._filled(obs), starts, memory, key, True)
            return actions, jax.tree.leaves(after)

        memory = [jax.ShapeDtypeStruct((*batch, *m.shape[1:]), m.dtype) for m in memory]
        starts = jax.ShapeDtypeStruct(batch, bool)
        return export.export(jax.jit(step), platforms=PLATFORMS)(leaves, obs, memory, starts)

    def with_eval_episodes(self, episodes: int, name: str = "episodes") -> Policy:
        """This policy with ``eval_episodes`` (what :meth:`evaluate` averages over) set to ``episodes`` (an error
        names the argument ``name``)."""
        from rlx.evaluate import check_episodes

        episodes = check_episodes(episodes, name)
        if episodes is None:
            return self
        config = dataclasses.replace(self.config, eval_episodes=episodes)
        return Policy(driver.Experiment(config), self.paths, self.leaves, self.source)

    def save(self, path: str, overwrite: bool = False) -> str:
        """Writes the policy to the ``.npz`` file ``path`` (atomically; an existing file only with
        ``overwrite``) and returns ``path``."""
        path = os.fspath(path)
        if not path.lower().endswith(".npz"):
            raise ConfigError(f"{path}: must name the .npz file to write, e.g. policy.npz")
        if os.path.isdir(path):
            raise ConfigError(f"{path}: is a directory; name the .npz file to write")
        if os.path.exists(path) and not overwrite:
            raise ConfigError(f"{path}: already exists; choose another name or overwrite it (--overwrite)")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigError(f"{path}: its directory does not exist")
        leaves = [np.asarray(jax.device_get(leaf)) for leaf in self.leaves]
        meta = {
            "format": FORMAT,
            "config": to_dict(self.config),
            "leaves": [{"path": p, "shape": list(x.shape), "dtype": str(x.dtype)} for p, x in zip(self.paths, leaves)],
            "source": self.source,
        }
        program = self.program()
        meta["program"] = {
            "platforms": list(program.platforms),
            "call": "program.call(leaves, obs, memory, starts) -> (actions, memory)"
            if self.recurrent
            else "program.call(leaves, obs) -> actions",
            "observation_keys": None if self.observation_keys is None else list(self.observation_keys),
            "memory": None
            if not self.recurrent
            else [{"shape": list(m.shape[1:]), "dtype": str(m.dtype)} for m in jax.tree.leaves(self.initial_memory(1))],
        }
        arrays = {f"leaf_{i}": x for i, x in enumerate(leaves)}
        arrays[META_KEY] = np.array(json.dumps(meta))
        arrays[PROGRAM_KEY] = np.frombuffer(bytes(program.serialize()), np.uint8)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".rlx-policy-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as f:
                np.savez(f, **arrays)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        return path

    @property
    def nbytes(self) -> int:
        return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize for leaf in self.leaves)


def _observation_spec(experiment: driver.Experiment) -> Any:
    """Shapes and dtypes of one observation of ``experiment``'s env (a dict of them for dict observations)."""
    one = jax.eval_shape(experiment.env.reset, jax.random.PRNGKey(0)).obs
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), one)


def zero_filled_state(abstract: list, treedef: Any, positions: list[int], leaves: Any) -> Any:
    """The train state of ``treedef`` with ``leaves[i]`` at leaf position ``positions[i]`` and zeros shaped as
    ``abstract`` (its leaves) elsewhere: what acting needs, inside a traced function, where the zeros cost nothing."""
    full = [jnp.zeros(leaf.shape, leaf.dtype) for leaf in abstract]
    for position, leaf in zip(positions, leaves):
        full[position] = leaf
    return jax.tree.unflatten(treedef, full)


def _describe_given(obs: Any) -> str:
    """What was given as observations, for error messages: shapes, a dict's keys with them."""

    def shape(x):
        return (
            str(list(np.shape(x)))
            if isinstance(x, (np.ndarray, jax.Array, list, tuple, float, int))
            else type(x).__name__
        )

    if isinstance(obs, dict):
        return "{" + ", ".join(f"{k}: {shape(v)}" for k, v in obs.items()) + "}"
    return shape(obs)


def _deterministic(key: jax.Array | None, deterministic: bool | None) -> bool:
    """Whether to act deterministically: as asked, else without a key; a sample needs a key."""
    deterministic = key is None if deterministic is None else bool(deterministic)
    if not deterministic and key is None:
        raise ValueError("key: a sampled action (deterministic=False) needs a PRNG key: policy(obs, key)")
    return deterministic


def _key(key: jax.Array | None) -> jax.Array:
    return jax.random.PRNGKey(0) if key is None else key  # unused when acting deterministically


def _actions(experiment: driver.Experiment, state, obs, starts, memory, key, deterministic):
    algo, agent, env = experiment.algo, experiment.static_agent, experiment.env
    if memory is not None:
        return algo.act_step(agent, env, state, obs, starts, memory, key, deterministic)
    return algo.act(agent, env, state, obs, key, deterministic), None


_ACTING_INPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # experiment -> acting_inputs


def acting_inputs(experiment: driver.Experiment) -> tuple[list[bool], list[bool]]:
    """Whether the actions (deterministic or sampled, and a recurrent policy's next memory) depend on each leaf of
    ``experiment``'s train state and on each leaf of an observation (both in ``jax.tree.leaves`` order: a dict's
    entries sorted by key). Traced once per experiment (a policy of a dict observation asks twice)."""
    if experiment in _ACTING_INPUTS:
        return _ACTING_INPUTS[experiment]
    abstract = experiment.abstract_state()
    leaves, treedef = jax.tree.flatten(abstract)
    obs = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, *x.shape), x.dtype), _observation_spec(experiment))
    obs_leaves, obs_treedef = jax.tree.flatten(obs)
    memory = experiment.initial_memory(1)
    starts = jnp.ones((1,), bool)

    def both(leaves, obs_leaves, key):
        state, obs = jax.tree.unflatten(treedef, leaves), jax.tree.unflatten(obs_treedef, obs_leaves)
        return [_actions(experiment, state, obs, starts, memory, key, d) for d in (True, False)]

    jaxpr = jax.make_jaxpr(both)(leaves, obs_leaves, jax.random.PRNGKey(0)).jaxpr
    if dce_jaxpr is not None:
        used = dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))[1]
    else:
        used = _input_dependence(jaxpr)
    found = used[: len(leaves)], used[len(leaves) : len(leaves) + len(obs_leaves)]
    _ACTING_INPUTS[experiment] = found
    return found


def acting_leaves(experiment: driver.Experiment) -> list[bool]:
    """For each leaf of ``experiment``'s train state (``jax.tree.leaves`` order), whether acting reads it."""
    return acting_inputs(experiment)[0]


def from_state(experiment: driver.Experiment, state: Any, source: dict | None = None) -> Policy:
    """The policy of a train state of ``experiment`` (one run's, not a sweep's stacked states)."""
    experiment.check_state(state)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    chosen = [(jax.tree_util.keystr(path), leaf) for (path, leaf), used in zip(flat, acting_leaves(experiment)) if used]
    return Policy(experiment, tuple(p for p, _ in chosen), tuple(leaf for _, leaf in chosen), dict(source or {}))


def from_run(run_dir: str, what: str = "from_run") -> Policy:
    """The policy of ``run_dir``'s newest valid checkpoint; ``what`` names the caller in errors."""
    from rlx import evaluate

    experiment, state, meta = evaluate.load(run_dir, what=what)
    source = {"run_dir": os.path.abspath(run_dir), "chunks_done": meta["chunks_done"], "env_steps": meta["env_steps"]}
    return from_state(experiment, state, source)


def load(path: str) -> Policy:
    """A policy saved with :meth:`Policy.save`, or that of a run directory's newest checkpoint."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return from_run(path, what="load")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such policy file or run directory")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[META_KEY]))
            arrays = [data[f"leaf_{i}"] for i in range(len(meta["leaves"]))]
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        raise ConfigError(f"{path}: not an rlx policy file (written by rlx export or Policy.save)") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: policy format {meta.get('format')!r}; this rlx reads {FORMAT!r}")
    if not isinstance(meta.get("config"), dict):
        raise ConfigError(f"{path}: not an rlx policy file (written by rlx export or Policy.save)")
    try:
        experiment = driver.Experiment(driver.build_config(meta["config"]))
    except ConfigError as e:
        raise ConfigError(f"{path}: its config does not build with this rlx: {e}") from None
    flat = jax.tree_util.tree_flatten_with_path(experiment.abstract_state())[0]
    expected = {jax.tree_util.keystr(p): leaf for p, leaf in flat}
    paths = tuple(entry["path"] for entry in meta["leaves"])
    for name, array in zip(paths, arrays):
        want = expected.get(name)
        if want is None or want.shape != array.shape or want.dtype != array.dtype:
            shape = "missing" if want is None else f"{list(want.shape)} {want.dtype}"
            raise ConfigError(
                f"{path}: leaf {name} is {list(array.shape)} {array.dtype}, the config's train state has {shape}"
            )
    needed = [jax.tree_util.keystr(p) for (p, _), used in zip(flat, acting_leaves(experiment)) if used]
    missing = sorted(set(needed) - set(paths))
    if missing:
        raise ConfigError(f"{path}: acting reads leaves the file lacks: {', '.join(missing)}")
    leaves = {name: jnp.asarray(array) for name, array in zip(paths, arrays)}
    return Policy(experiment, tuple(needed), tuple(leaves[name] for name in needed), meta.get("source", {}))
