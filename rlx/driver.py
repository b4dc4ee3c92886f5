"""The driver of one run: the validated :class:`RunConfig`, the :class:`Plan` mapping the env-step budget
onto iterations and chunks, the :class:`Experiment` (compiled pure init, chunk and evaluation functions)
and ``train``/``resume``, which run the chunks through the host loop shared with sweeps (``rlx.host``:
logging, evaluation, checkpoints, divergence; the run directory contract is documented there).

Keys: a run with seed ``s`` initializes from :func:`init_key` and evaluates after chunk ``c`` with
:func:`eval_key`; sweeps use the same two functions, so a seed inside a sweep is that seed's run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp

from rlx import algos, host
from rlx.checkpoint import Checkpointer, shape_mismatch
from rlx.config import (
    ConfigError,
    check_stop_after_chunks,
    field,
    from_dict,
    load_yaml,
    plain_data,
    to_dict,
    traced_fields,
    unread_fields,
    yaml_word,
)
from rlx.envs import EnvConfig, Vmap, evaluation_spec, make
from rlx.host import COLLECTION_METRICS, GRADIENT_STEPS, SUMMED_METRICS, DivergenceError, RunDir
from rlx.metrics_log import read_metrics
from rlx.nets.spec import PolicyNet
from rlx.rollout import Policy, PolicyStep, first_episode_mask, unroll

__all__ = [
    "DivergenceError",
    "Experiment",
    "Plan",
    "RunConfig",
    "RunResult",
    "build_config",
    "eval_key",
    "init_key",
    "load_run_config",
    "resume",
    "train",
]


def init_key(seed: int) -> jax.Array:
    """The PRNG key a run with ``seed`` initializes from (its train state's key descends from it)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 0)


def eval_key(seed: int, chunk_index: int) -> jax.Array:
    """The key of the evaluation after chunk ``chunk_index``: it depends on (seed, chunk) only, so evaluating
    never changes training."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), 1), chunk_index)


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Loggers beside ``metrics.jsonl``/``metrics.csv`` (always written) and TensorBoard (``tensorboard``)."""

    wandb: bool = field(False, doc="also log every metrics row to Weights & Biases (needs the wandb package)")
    project: str = field("rlx", doc="wandb: the project", read_with={"wandb": (True,)})
    entity: str | None = field(
        None, doc="wandb: the team or user (null: wandb's default)", read_with={"wandb": (True,)}
    )
    group: str | None = field(
        None, doc="wandb: the run group (null: a sweep's directory name, else none)", read_with={"wandb": (True,)}
    )
    mode: str = field(
        "online",
        choices=("online", "offline"),
        doc="wandb: offline writes RUN_DIR/wandb, uploaded by `wandb sync`",
        read_with={"wandb": (True,)},
    )

    def check(self, prefix: str = "") -> None:
        if self.wandb and importlib.util.find_spec("wandb") is None:
            raise ConfigError(f"{prefix}wandb: needs the wandb package (pip install wandb); got true")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: algorithm, env, budget and driver settings; ``agent`` is the algorithm's Config."""

    algo: str = field("ppo", doc="algorithm, a name in the registry (rlx.algos.ALGORITHMS; rlx algos lists them)")
    env: EnvConfig = field(default_factory=EnvConfig)
    seed: int = field(0, ge=0, lt=2**32)  # PRNGKey keeps 32 bits: seed 2**32 would be seed 0 again
    total_env_steps: int = field(524_288, gt=0, doc="env steps to train (incl. action repeat)")
    num_chunks: int = field(
        10,
        gt=0,
        doc="jitted chunks of ceil(iterations / num_chunks) iterations (fewer when that splits the run into fewer; "
        "said in a note); logging, eval and checkpoints happen between them",
    )
    iterations_per_chunk: int | None = field(
        None, gt=0, doc="fixes the chunk length instead of splitting the run into num_chunks (set by extending a run)"
    )
    eval_every: int = field(1, ge=0, doc="evaluate every N chunks and at the end (0: only at the end)")
    eval_episodes: int = field(16, gt=0, doc="deterministic evaluation episodes (run in parallel)")
    checkpoint_every: int = field(1, ge=0, doc="checkpoint every K chunks and at the end (0: only at the end)")
    keep_checkpoints: int = field(3, gt=0, doc="how many recent checkpoints to keep")
    tensorboard: bool = field(True, doc="also write TensorBoard event files")
    logging: LoggingConfig = field(default_factory=LoggingConfig, doc="optional loggers (Weights & Biases)")
    agent: Any = field(None, doc="the algorithm's hyperparameters")


def build_config(data: dict | None = None) -> RunConfig:
    """Validates plain data (from YAML and ``--set``) into a :class:`RunConfig`; defaults fill the rest."""
    if data is not None and not isinstance(data, (dict, RunConfig)):  # build_config("ppo") was a raw ValueError
        raise ConfigError(
            f"config: expected a mapping of run-config fields, e.g. {{'algo': 'ppo'}}, or a RunConfig; got {data!r}"
        )
    data = to_dict(data) if isinstance(data, RunConfig) else dict(data or {})
    if "extends" in data:
        raise ConfigError(
            f"extends: {data['extends']!r} is resolved when a file is read; load it with rlx.presets.load"
        )
    algo_name = data.get("algo", "ppo")
    if not isinstance(algo_name, str):
        raise ConfigError(f"algo: expected a string, got {algo_name!r}")
    algo = algos.get(algo_name)
    agent = data.pop("agent", {})
    if isinstance(agent, algo.Config):
        agent = to_dict(agent)
    if not isinstance(agent, dict):  # null or [] replaced a file's whole agent section with the defaults
        raise ConfigError(
            f"agent: expected a mapping of {algo_name}'s fields (leave it out for the defaults); got {agent!r}"
        )
    if isinstance(data.get("env"), EnvConfig):
        data["env"] = to_dict(data["env"])
    run = from_dict(RunConfig, data)
    return dataclasses.replace(run, agent=from_dict(algo.Config, agent, prefix="agent."))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the env-step budget maps onto iterations and chunks."""

    env_steps_per_iteration: int
    num_iterations: int
    iterations_per_chunk: int
    num_chunks: int

    @classmethod
    def make(
        cls,
        total_env_steps: int,
        env_steps_per_iteration: int,
        num_chunks: int,
        iterations_per_chunk: int | None = None,
    ) -> Plan:
        iterations = max(1, -(-total_env_steps // env_steps_per_iteration))
        per_chunk = iterations_per_chunk or -(-iterations // min(num_chunks, iterations))
        return cls(env_steps_per_iteration, iterations, per_chunk, -(-iterations // per_chunk))

    @property
    def total_env_steps(self) -> int:
        return self.num_iterations * self.env_steps_per_iteration

    def iterations_done(self, chunks_done: int) -> int:
        return min(chunks_done * self.iterations_per_chunk, self.num_iterations)

    def env_steps(self, chunks_done: int) -> int:
        return self.iterations_done(chunks_done) * self.env_steps_per_iteration

    def is_last(self, chunk_index: int) -> bool:
        return chunk_index + 1 == self.num_chunks

    def evaluates_after(self, chunk_index: int, eval_every: int) -> bool:
        """Evaluation after every ``eval_every``-th chunk and after the last one."""
        return self.is_last(chunk_index) or bool(eval_every and (chunk_index + 1) % eval_every == 0)

    def first_checkpoint(self, checkpoint_every: int) -> int:
        """The chunk count after which a run saves its first checkpoint (without a requested stop)."""
        return next(c + 1 for c in range(self.num_chunks) if self.checkpoints_after(c, checkpoint_every))

    def checkpoints_after(self, chunk_index: int, checkpoint_every: int, stopping: bool = False) -> bool:
        """A checkpoint after every ``checkpoint_every``-th chunk, the last one, and before a requested stop."""
        return (
            self.is_last(chunk_index)
            or stopping
            or bool(checkpoint_every and (chunk_index + 1) % checkpoint_every == 0)
        )


def strong_types(tree: Any) -> Any:
    """``tree`` with its weakly typed leaves made strong (same dtypes and values). Some envs and the replay buffer
    start from Python scalars (gymnax's ``time`` and Pendulum's ``last_u``, the buffer's index), which jax types
    weakly, while the same leaves come out of a chunk strongly typed: a jitted chunk (``jax.jit``, a user's own
    loop) would then trace and compile again on its second call."""
    return jax.tree.map(
        lambda x: jax.lax.convert_element_type(x, x.dtype) if getattr(x, "weak_type", False) else x, tree
    )


def plan_for(config: RunConfig) -> Plan:
    """The :class:`Plan` of a validated run config (no env is built)."""
    steps = algos.get(config.algo).steps_per_iteration(config.agent) * config.env.action_repeat
    return Plan.make(config.total_env_steps, steps, config.num_chunks, config.iterations_per_chunk)


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


class Experiment:
    """A validated run config bound to its env and algorithm, with the compiled chunk and eval functions.

    Everything here is pure in the train state, so ``run_chunk`` can be called on any state (fresh,
    restored, or one of many) and gives the same result for the same input.
    """

    def __init__(self, config: RunConfig):
        # validated again: a RunConfig changed with dataclasses.replace (np.int64(1) as a seed, num_chunks=0) was
        # never checked, and failed late or could not be written to config.yaml
        self.config = config = build_config(config)
        self.algo = algos.get(config.algo)
        self.env = make(config.env)
        eval_spec = evaluation_spec(config.env)  # domain randomization evaluates on the nominal model by default
        self.eval_env = self.env if eval_spec == config.env else make(eval_spec)
        reason = algos.supports(config.algo, self.env)
        if reason is not None:
            raise ConfigError(f"algo {config.algo} cannot train on env {config.env.name}: {reason}")
        algos.check_networks(config.agent, self.env)
        self.plan = plan_for(config)
        self.static_agent = compiled_agent(config.agent)
        self._jitted_init = None
        self._abstract_state = None
        self._compiled_chunk = None
        self._compiled_eval = None
        self.compile_seconds = 0.0

    @property
    def budget_note(self) -> str | None:
        """A message when the env-step budget had to be rounded up to whole iterations."""
        if self.plan.total_env_steps == self.config.total_env_steps:
            return None
        return (
            f"total_env_steps={self.config.total_env_steps} is not a multiple of the "
            f"{self.plan.env_steps_per_iteration} env steps per iteration; training "
            f"{self.plan.total_env_steps} env steps ({self.plan.num_iterations} iteration"
            f"{'s' * (self.plan.num_iterations != 1)}) instead"
        )

    @property
    def chunk_note(self) -> str | None:
        """A message when the run has another number of chunks than ``num_chunks`` asks (chunks are whole
        iterations of one length, only the last may be shorter: 6 iterations make 3 chunks of 2, not 5)."""
        plan, config = self.plan, self.config
        if plan.num_chunks == config.num_chunks:
            return None
        if config.iterations_per_chunk is not None:
            return (
                f"num_chunks={config.num_chunks} is not read: iterations_per_chunk={config.iterations_per_chunk} "
                f"makes {plan.num_chunks} chunk(s) of the {plan.num_iterations} iterations"
            )
        short = plan.num_iterations % plan.iterations_per_chunk
        return (
            f"num_chunks={config.num_chunks}: the {plan.num_iterations} iteration(s) split into {plan.num_chunks} "
            f"chunk(s) of {plan.iterations_per_chunk}{f' (the last {short})' if short else ''}, as chunks are whole "
            f"iterations of one length; logging, evaluation and checkpoints follow them"
        )

    @property
    def notes(self) -> list[str]:
        """Notes on what the plan trains: the budget's rounding, the chunks' count where it is not ``num_chunks``
        and, where the algorithm has any, what the run is too short for (``plan_notes`` of the agent config)."""
        plan_notes = getattr(self.config.agent, "plan_notes", None)
        return (
            [self.budget_note] * bool(self.budget_note)
            + [self.chunk_note] * bool(self.chunk_note)
            + (plan_notes(self.plan.num_iterations) if plan_notes else [])
            + unread_settings(self.config, self.env)
        )

    # -- pure functions ------------------------------------------------------------------------------

    def init_fn(self, key: jax.Array, traced: dict[str, jax.Array] | None = None) -> Any:
        """Fresh train state; ``traced`` (field name -> scalar) replaces the config's traced values, so
        this can be vmapped over keys and hyperparameters."""
        agent = self.config.agent if traced is None else dataclasses.replace(self.static_agent, **traced)
        return strong_types(self.algo.init(agent, self.env, key, self.plan.num_iterations))

    def chunk_fn(self, state: Any, num_active: jax.Array) -> tuple[Any, dict]:
        """Runs ``iterations_per_chunk`` iterations, of which the first ``num_active`` are real (the
        last chunk of a run may be shorter); returns the state and chunk-reduced metrics. When the plan's
        chunks are all full, ``num_active`` must be the chunk length and no per-iteration branch is built."""
        config, env, algo = self.static_agent, self.env, self.algo
        every_chunk_full = self.plan.num_iterations % self.plan.iterations_per_chunk == 0

        def body(state, i):
            if every_chunk_full:  # num_active is always the chunk length: no per-iteration branch
                return algo.train_step(config, env, state)
            metrics_shape = jax.eval_shape(lambda s: algo.train_step(config, env, s)[1], state)

            def idle(s):
                return s, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

            return jax.lax.cond(i < num_active, lambda s: algo.train_step(config, env, s), idle, state)

        length = self.plan.iterations_per_chunk
        state, metrics = jax.lax.scan(body, state, jnp.arange(length))
        active = (jnp.arange(length) < num_active).astype(jnp.float32)
        finite = jnp.stack([jnp.isfinite(v) for k, v in metrics.items() if k not in SUMMED_METRICS]).all(axis=0)
        reduced = {"first_nonfinite_iteration": jnp.argmax(~finite & (active > 0)).astype(jnp.float32)}
        # an off-policy iteration before learning_starts takes no gradient step: its loss metrics are zeros that
        # would dilute the chunk's means, so those average over the iterations that updated
        updated = active if GRADIENT_STEPS not in metrics else active * (metrics[GRADIENT_STEPS] > 0)
        for name, values in metrics.items():
            if name in SUMMED_METRICS:
                reduced[name] = jnp.sum(values.astype(jnp.float32) * active)
            elif name in COLLECTION_METRICS or GRADIENT_STEPS not in metrics:
                reduced[name] = jnp.sum(values.astype(jnp.float32) * active) / num_active
            else:
                reduced[name] = jnp.sum(values.astype(jnp.float32) * updated) / jnp.maximum(jnp.sum(updated), 1.0)
        reduced["params_finite"] = _all_finite(state.params)
        return state, reduced

    def evaluate_fn(self, state: Any, key: jax.Array) -> dict:
        """Mean undiscounted return of ``eval_episodes`` deterministic episodes (no auto-reset)."""
        n = self.config.eval_episodes
        eval_env = Vmap(self.eval_env, n)
        reset_key, act_key = jax.random.split(key)
        policy, carry = self.eval_policy(state, n)
        out = unroll(eval_env, policy, eval_env.reset(reset_key), carry, act_key, self.eval_env.max_episode_steps)
        alive = first_episode_mask(out.transitions)
        returns = jnp.sum(out.transitions.reward * alive, axis=0)
        lengths = jnp.sum(alive, axis=0)
        return {
            "eval/episode_return": returns.mean(),
            "eval/episode_return_std": returns.std(),
            "eval/episode_length": lengths.mean(),
        }

    @property
    def divergence_note(self) -> str:
        """What a divergence message adds about this config's env (a domain-randomization range that MJX may step
        to NaN on), or nothing."""
        return getattr(self.env, "divergence_note", "")  # wrappers forward attributes to the env they wrap

    def initial_memory(self, num_envs: int) -> Any | None:
        """A recurrent policy's zero memory for ``num_envs`` envs (algorithms with ``initial_memory`` and
        ``act_step`` whose config has a recurrent cell), else None."""
        initial_memory = getattr(self.algo, "initial_memory", None)
        memory = initial_memory(self.static_agent, num_envs) if initial_memory else None
        return memory if jax.tree.leaves(memory) else None

    def eval_policy(self, state: Any, num_envs: int) -> tuple[Policy, Any]:
        """The deterministic policy of ``state`` as a rollout policy, and its carry at the start for ``num_envs``
        envs: a recurrent policy's zero memory (:meth:`initial_memory`), else ``()``."""
        memory = self.initial_memory(num_envs)
        if memory is not None:

            def recurrent_policy(obs, starts, carry, key):
                action, carry = self.algo.act_step(self.static_agent, self.env, state, obs, starts, carry, key, True)
                return PolicyStep(action, {}, carry)

            return recurrent_policy, memory

        def policy(obs, starts, carry, key):
            return PolicyStep(
                self.algo.act(self.static_agent, self.env, state, obs, key, deterministic=True), {}, carry
            )

        return policy, ()

    # -- compiled entry points -----------------------------------------------------------------------

    def init(self, seed: int | None = None) -> Any:
        """Fresh train state for ``seed`` (default: the config's)."""
        seed = self.config.seed if seed is None else plain_data(seed)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:  # as the config's seed
            raise ConfigError(f"seed: must be an integer >= 0 and < {2**32} (the PRNG key keeps 32 bits); got {seed!r}")
        if self._jitted_init is None:
            self._jitted_init = jax.jit(self.init_fn)
        return self._jitted_init(init_key(seed))

    def abstract_state(self) -> Any:
        """Shapes and dtypes of the train state, without running anything."""
        if self._abstract_state is None:
            self._abstract_state = jax.eval_shape(self.init_fn, jax.random.PRNGKey(0))
        return self._abstract_state

    def check_state(self, state: Any) -> None:
        """A ConfigError unless ``state`` is a live train state of this experiment's structure, shapes and dtypes
        (a state of another config was trained as if it were this one's, then broke the compiled chunk)."""
        abstract = self.abstract_state()
        if jax.tree.structure(state) != jax.tree.structure(abstract):
            raise ConfigError("state: not a train state of this experiment (another algorithm, env or network?)")
        if any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree.leaves(state)):
            raise ConfigError("state: was donated to an earlier run_chunk and deleted; use the state it returned")
        mismatch = shape_mismatch(state, abstract)
        if mismatch is None:
            return
        shapes = [
            (tuple(jnp.shape(leaf)), tuple(want.shape)) for leaf, want in zip(*map(jax.tree.leaves, (state, abstract)))
        ]
        leads = {got[:1] if got[1:] == want else None for got, want in shapes}  # a sweep group's: one more leading axis
        if len(leads) == 1 and None not in leads and () not in leads:
            (runs,) = leads.pop()
            raise ConfigError(
                f"state: the stacked states of {runs} runs (a sweep group's, leading run axis); pick one run's with "
                "jax.tree.map(lambda x: x[i], state)"
            )
        raise ConfigError(f"state: {mismatch} (the state's vs this experiment's; a state of another config?)")

    def run_chunk(self, state: Any, chunk_index: int) -> tuple[Any, dict]:
        """Runs chunk ``chunk_index`` (0-based) on ``state``; metrics come back as Python floats.

        ``state`` is donated: the new state reuses its buffers (the replay buffer is updated in place, not
        copied) and ``state`` is deleted, so keep a copy (``jax.tree.map(jnp.copy, state)``) to run a chunk
        twice from it. Arrays with a live host view (``jax.device_get`` on CPU) are copied instead."""
        chunk_index = plain_data(chunk_index)  # a NumPy/JAX integer (a loop over np.arange) is an index too
        if isinstance(chunk_index, bool) or not isinstance(chunk_index, int):
            raise ConfigError(f"chunk_index: expected an integer, got {chunk_index!r}")
        if not 0 <= chunk_index < self.plan.num_chunks:  # past the plan it trained on and averaged over 0 iterations
            raise ConfigError(
                f"chunk_index: must be in 0..{self.plan.num_chunks - 1} (the plan's chunks); got {chunk_index}"
            )
        self.check_state(state)
        if self._compiled_chunk is None:
            start = time.perf_counter()
            state = jax.block_until_ready(state)  # compile_seconds counts compiling only, not init still running
            lowered = jax.jit(self.chunk_fn, donate_argnums=0).lower(state, jnp.int32(0))
            self._compiled_chunk = lowered.compile()
            self.compile_seconds += time.perf_counter() - start
        num_active = self.plan.iterations_done(chunk_index + 1) - self.plan.iterations_done(chunk_index)
        state, metrics = self._compiled_chunk(state, jnp.int32(num_active))
        return state, {k: float(v) for k, v in jax.device_get(metrics).items()}

    def evaluate(self, state: Any, chunk_index: int) -> dict:
        """Deterministic evaluation with a key that depends on (seed, chunk) only, never on training."""
        key = eval_key(self.config.seed, chunk_index)
        if self._compiled_eval is None:
            start = time.perf_counter()
            self._compiled_eval = jax.jit(self.evaluate_fn).lower(state, key).compile()
            self.compile_seconds += time.perf_counter() - start
        return {k: float(v) for k, v in jax.device_get(self._compiled_eval(state, key)).items()}


def compiled_agent(agent: Any) -> Any:
    """The agent config the compiled functions see: its traced fields blanked out (None), so every traced value
    they use comes from the train state's ``hparams`` (and a vmapped sweep cannot silently use the base value).
    Whether an optional traced field is set is read from the state too: ``hparams.get(name) is not None``."""
    return dataclasses.replace(agent, **{f: None for f in traced_fields(type(agent))})


def unread_reasons(config: RunConfig, env: Any = None) -> dict[str, str]:
    """``config.unread_fields`` of a run config, and with ``env`` its policies' box-action fields when the env's
    actions are discrete: every field path the other settings (and the env) leave unread, with why."""
    unread = unread_fields(config)
    if env is not None and env.action_space.kind == "discrete":
        for f in dataclasses.fields(config.agent):
            if isinstance(getattr(config.agent, f.name), PolicyNet):
                why = f"{env.name} has discrete actions, which take a categorical policy"
                unread.update({f"agent.{f.name}.{name}": why for name in PolicyNet.BOX_ONLY})
    return unread


def unread_settings(config: RunConfig, env: Any = None) -> list[str]:
    """Notes on fields set away from their defaults that the other settings leave unread (DQN's ``tau`` with
    hard target copies, a critic's ``renorm_momentum`` without ``norm: batch_renorm``; with ``env``, a policy's
    box-action fields when its actions are discrete): a value that does nothing is said, not silently kept. A
    section's defaults are its algorithm's (CrossQ's critic, not ``CriticNet()``)."""
    notes, defaults = [], {}
    for path, why in unread_reasons(config, env).items():
        section, *rest = path.split(".")
        value = getattr(config, section)
        default = defaults.setdefault(section, type(value)())
        for part in rest:
            value, default = getattr(value, part), getattr(default, part)
        if value != default:
            notes.append(f"{path}={yaml_word(value)} is never read: {why}")
    return notes


@dataclasses.dataclass
class RunResult:
    """What a finished (or stopped) run returns."""

    state: Any
    rows: list[dict]
    run_dir: str | None
    status: str  # "completed" | "stopped" (summary.json may also say "diverged", "interrupted" or "failed")
    experiment: Experiment
    compile_cache: dict = dataclasses.field(default_factory=dict)  # this run's requests and hits, as summary.json


def train(
    config: RunConfig | dict,
    run_dir: str | None = None,
    *,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Trains from scratch. With ``run_dir`` None nothing is written (no logs, no checkpoints)."""
    check_stop_after_chunks(stop_after_chunks)
    experiment = Experiment(config if isinstance(config, RunConfig) else build_config(config))
    if run_dir is not None:
        host.prepare_dir(run_dir, overwrite)
        host.write_config(run_dir, experiment.config)
    no_dir = ["logging.wandb=true logs nothing: run_dir is None (nothing is written)"] * (
        run_dir is None and experiment.config.logging.wandb
    )
    host.print_notes(experiment.notes + no_dir)
    session = host.Session.begin()
    try:
        return _run(experiment, experiment.init(), 0, run_dir, progress, stop_after_chunks, session)
    except BaseException as e:  # before the chunks' loop (making the state, opening the logs), which writes none
        summary = None if run_dir is None else os.path.join(run_dir, "summary.json")
        if summary is not None and not os.path.exists(summary):
            status, error = host.stop_reason(e)
            host.write_json(
                summary, {"status": status, **host.session_summary(experiment, session, error), "env_steps": 0}
            )
        raise


def load_run_config(run_dir: str, what: str = "--resume") -> RunConfig:
    """The config recorded in ``run_dir/config.yaml``; ``what`` names the argument in the error."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"{what} {run_dir}: no config.yaml there; not an rlx run directory")
    data = load_yaml(path, f"{what} {run_dir}:")
    if not data:
        raise ConfigError(f"{what} {run_dir}: its config.yaml is empty")
    try:
        return build_config(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


TRAINING_FIELDS = ("algo", "seed", "env", "agent")  # what a checkpoint's state depends on (not logging, eval, budget)
BUDGET_FIELDS = ("total_env_steps", "num_chunks", "iterations_per_chunk")  # where each chunk's checkpoint falls


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted field, saved value, current value)`` for each leaf field of two plain-data configs that differs;
    a field only one of them has (a config of another rlx version) is not a difference."""
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(saved) & set(current), key=str):
            found += config_differences(saved[key], current[key], f"{prefix}{key}.")
        return found
    return [] if saved == current else [(prefix.rstrip("."), saved, current)]


def training_differences(saved: dict, current: dict) -> list[tuple[str, Any, Any]]:
    """:func:`config_differences` of two plain-data run configs in the fields a train state depends on."""
    return [d for f in TRAINING_FIELDS for d in config_differences(saved.get(f), current.get(f), f"{f}.")]


def shown(differences: list[tuple[str, Any, Any]], there: str = "there", here: str = "here") -> str:
    """Up to four differences as ``"field: old there, new here"``, joined by ``"; "``."""
    text = "; ".join(f"{name}: {old!r} {there}, {new!r} {here}" for name, old, new in differences[:4])
    return text + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")


def check_checkpoint_config(
    checkpointer: Checkpointer,
    config: RunConfig,
    source: str,
    *,
    resuming: bool,
    may_extend: bool = False,
    abstract_state: Any = None,
) -> None:
    """Compares ``config`` (read from ``source``, e.g. a run's config.yaml) with the config the newest
    checkpoint was saved with (its metadata). A resume continues the run as it was trained, so any difference
    in the training or budget fields is a ConfigError naming them (with ``may_extend``, a budget that
    :func:`extended_config` makes of the saved one is not: an extension killed before its first checkpoint);
    an evaluation (``abstract_state``: the train state ``config`` builds) warns about training fields, unless
    the saved config's train state has other shapes, which no checkpoint can then fill (a ConfigError saying
    the checkpoints are not damaged). A newest checkpoint whose metadata cannot be read is passed over for the
    next older one with a readable saved config, as the restore passes it over (every checkpoint of a run shares
    its training fields); with none readable, the restore decides."""
    newest, saved = _newest_saved_config(checkpointer)
    current = to_dict(config)
    if saved is None:
        return
    saved_with = f"{source} differs from the config checkpoint {checkpointer.path(newest)} was saved with"
    differences = training_differences(saved, current)
    if resuming:
        if differences:
            raise ConfigError(
                f"{saved_with} ({shown(differences)}); a resume continues the run as it was trained: put the file "
                "back as it was, or train a new run with the new values"
            )
        budget = [(f, saved.get(f), current.get(f)) for f in BUDGET_FIELDS if saved.get(f) != current.get(f)]
        if budget and not (may_extend and _extends(saved, config)):
            raise ConfigError(
                f"{saved_with} ({shown(budget)}); its chunks and checkpoints follow the saved budget: put the file "
                "back as it was (extend a finished or stopped run with --resume DIR --steps N)"
            )
        return
    if not differences:
        return
    mismatch = f"{saved_with} ({shown(differences)})"
    try:
        saved_state = Experiment(build_config(saved)).abstract_state()
    except ConfigError:  # a config this rlx cannot build: the restore decides
        return
    same_structure = jax.tree.structure(saved_state) == jax.tree.structure(abstract_state)
    if not same_structure or shape_mismatch(saved_state, abstract_state) is not None:
        raise ConfigError(
            f"{mismatch}, which builds a train state of other shapes (the checkpoints are not damaged): "
            "put the file back as it was"
        )
    print(f"rlx: warning: {mismatch}; evaluating with the file's values", file=sys.stderr)


def _newest_saved_config(checkpointer: Checkpointer) -> tuple[int | None, dict | None]:
    """``(chunks_done, saved config)`` of the newest checkpoint whose metadata holds a readable config."""
    for step in reversed(checkpointer.all_steps()):
        saved = (checkpointer.read_meta(step) or {}).get("rlx_config")
        if isinstance(saved, dict):
            return step, saved
    return None, None


def _extends(saved: dict, config: RunConfig) -> bool:
    """Whether ``config``'s budget is the saved config's extended to ``config.total_env_steps``."""
    try:
        extended = extended_config(build_config(saved), config.total_env_steps)
    except ConfigError:
        return False
    return all(getattr(extended, f) == getattr(config, f) for f in BUDGET_FIELDS)


def extended_config(config: RunConfig, total_env_steps: int) -> RunConfig:
    """``config`` continued to a larger ``total_env_steps``: the finished chunks keep their boundaries (the
    chunk length is fixed to theirs), so checkpoints and metric rows line up with the longer plan."""
    plan = plan_for(config)
    if total_env_steps <= plan.total_env_steps:
        raise ConfigError(
            f"--steps: extending a run needs more than its {plan.total_env_steps} env steps; got {total_env_steps}"
        )
    if plan.num_iterations % plan.iterations_per_chunk:
        raise ConfigError(
            f"--steps: cannot extend this run: its last chunk was shorter ({plan.num_iterations % plan.iterations_per_chunk}"
            f" of {plan.iterations_per_chunk} iterations), so no longer plan continues its chunks; train a new run"
        )
    longer = Plan.make(total_env_steps, plan.env_steps_per_iteration, 1, plan.iterations_per_chunk)
    return dataclasses.replace(
        config,
        total_env_steps=total_env_steps,
        num_chunks=longer.num_chunks,
        iterations_per_chunk=longer.iterations_per_chunk,
    )


def resumed_config(config: RunConfig, total_env_steps: int | None = None) -> RunConfig:
    """The config :func:`resume` continues a run of ``config`` with: its own, or extended to ``total_env_steps``."""
    total_env_steps = plain_data(total_env_steps)
    if total_env_steps is not None and (isinstance(total_env_steps, bool) or not isinstance(total_env_steps, int)):
        raise ConfigError(f"--steps: expected a whole number of env steps, got {total_env_steps!r}")
    if total_env_steps is None or total_env_steps == config.total_env_steps:
        return config
    return extended_config(config, total_env_steps)


def resume(
    run_dir: str, *, progress: bool = True, stop_after_chunks: int | None = None, total_env_steps: int | None = None
) -> RunResult:
    """Continues the run in ``run_dir`` from its newest checkpoint (or from scratch if it has none). With
    ``total_env_steps`` larger than the run's, a stopped or finished run continues to that budget
    (:func:`extended_config`); schedules that depend on the run's length (``total_iterations`` in the
    state: PPO's linear learning rate, DQN's and PQN's epsilon, SimbaV2's decay) are stretched to the new
    length from the current iteration on."""
    check_stop_after_chunks(stop_after_chunks)
    recorded = load_run_config(run_dir)
    config = resumed_config(recorded, total_env_steps)
    extend = config.total_env_steps != recorded.total_env_steps
    runs_dir = os.path.dirname(os.path.abspath(run_dir))
    sweep_dir = os.path.dirname(runs_dir)
    if os.path.basename(runs_dir) == "runs" and os.path.isfile(os.path.join(sweep_dir, "sweep.yaml")):
        if extend:  # its sweep's tables would mix budgets without a word
            raise ConfigError(
                f"--steps: {run_dir} is a run of the sweep {sweep_dir}; extending it alone would put runs of "
                "different budgets in the sweep's tables; start a sweep with the longer budget instead"
            )
        raise ConfigError(  # its runs would be at different chunks, and the sweep's resume could not continue them
            f"--resume: {run_dir} is a run of the sweep {sweep_dir}; resume the sweep instead "
            f"(rlx sweep --resume {sweep_dir}), which keeps all its runs at the same chunk"
        )
    experiment = Experiment(config)
    if extend:  # the new budget's rounding, as rlx train says it
        short = experiment.plan.num_iterations % experiment.plan.iterations_per_chunk
        last = (
            f"the last chunk trains {short} of {experiment.plan.iterations_per_chunk} iterations, so this run cannot "
            "be extended again"
        )
        host.print_notes(experiment.notes + [last] * bool(short))
    session = host.Session.begin()
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), config.keep_checkpoints)
    try:
        source = os.path.join(run_dir, "config.yaml")
        check_checkpoint_config(checkpointer, recorded, source, resuming=True, may_extend=True)
        restored = checkpointer.restore_latest_valid(experiment.abstract_state())
        if restored is None:
            _refuse_restart_over_logged_progress(run_dir, experiment)
            state, start = experiment.init(), 0
        else:
            state, meta = restored
            start = int(meta["chunks_done"])
        newer = [step for step in checkpointer.all_steps() if step > start]
    finally:
        checkpointer.close()
    if getattr(state, "total_iterations", None) is not None:  # stretched by an extension (also one killed early)
        state = state.replace(total_iterations=jnp.asarray(experiment.plan.num_iterations, jnp.int32))
    if extend:
        host.write_config(run_dir, experiment.config)
    host.set_aside(run_dir, newer)
    return _run(experiment, state, start, run_dir, progress, stop_after_chunks, session)


def _refuse_restart_over_logged_progress(run_dir: str, experiment: Experiment) -> None:
    """A ConfigError when ``run_dir`` has no checkpoint but its log shows one was saved (each chunk's row is
    written before its checkpoint, so a row after the first chunk due a checkpoint means there was one): resuming
    would start over and rewrite the log. A run killed before its first checkpoint resumes from scratch."""
    chunks = [row["chunk"] for row in read_metrics(run_dir)]
    first_due = experiment.plan.first_checkpoint(experiment.config.checkpoint_every)
    if chunks and max(chunks) > first_due:
        raise ConfigError(
            f"--resume {run_dir}: no checkpoint in its checkpoints/, but metrics.jsonl logs chunks up to "
            f"{max(chunks)} and a checkpoint was saved after chunk {first_due} (removed?); a resume would start over "
            "and rewrite the log: put the checkpoints back, or train a new run with --out"
        )


def _run(
    experiment: Experiment,
    state: Any,
    start: int,
    run_dir: str | None,
    progress: bool,
    stop_after_chunks: int | None,
    session: host.Session,
) -> RunResult:
    config = experiment.config
    run = RunDir(run_dir, config, start)

    def step(state, chunk):
        state, metrics = experiment.run_chunk(state, chunk)
        return state, [metrics]

    state, _, status = host.run_chunks(
        experiment,
        state,
        start,
        [run],
        step=step,
        evaluate=lambda s, c: [experiment.evaluate(s, c)],
        host_states=lambda s: [s],
        stop_after_chunks=stop_after_chunks,
        progress=progress,
        description=f"{config.algo} {config.env.name}",
        session=session,
    )
    return RunResult(
        state=state,
        rows=run.rows,
        run_dir=run_dir,
        status=status,
        experiment=experiment,
        compile_cache=session.cache_stats(),
    )
