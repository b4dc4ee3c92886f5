"""Population-based training over a sweep group: truncation selection against a NumPy reference, the exploit
step copying whole train states (replay buffers included) but not PRNG keys, perturbations inside the fields'
ranges, the logged lineage, bitwise resume, and one-line config errors."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from helpers import tree_equal

from rlx import algos, cli, driver, evaluate, plot, sweep
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError, merge, traced_fields
from rlx.sweep import pbt

PPO = {
    "algo": "ppo",
    "env": {"name": "gymnax/CartPole-v1"},
    "total_env_steps": 4 * 4 * 32 * 4,  # 4 chunks of 4 iterations of 4 envs x 32 steps
    "num_chunks": 4,
    "eval_episodes": 4,
    "keep_checkpoints": 4,  # every chunk's, to compare copies with their sources
    "agent": {
        "num_envs": 4,
        "unroll_length": 32,
        "num_minibatches": 2,
        "num_epochs": 1,
        "policy": {"hidden": [16]},
        "value": {"hidden": [16]},
    },
}
SPEC = {
    "config": PPO,
    "seeds": 2,
    "grid": {"agent.learning_rate": [1e-4, 1e-3, 3e-3, 1e-2]},
    "pbt": {"fields": ["agent.clip_epsilon"], "fraction": 0.25},  # the learning rate is inherited, not perturbed
}


def test_truncation_selection_copies_the_top_into_the_bottom_and_perturbs_only_those():
    scores = np.array([5.0, np.nan, 3.0, 9.0, 1.0, 7.0, 3.0, 8.0])
    eligible = np.array([True, True, True, True, False, True, True, True])  # run 4 diverged
    sources, factors, fresh = pbt.choose(scores, eligible, 0.3, (0.8, 1.2), 2, np.random.default_rng(0))
    assert np.isnan(fresh).all()  # no resampling
    # floor(0.3 * 8) = 2: best 3 (9.0) and 7 (8.0); worst the diverged run 4, then 6 (3.0 ties with run 2; the
    # lower index ranks first); run 1 has no score (no episode ended): neither copied nor replaced
    kept = [0, 1, 2, 3, 5, 7]
    assert list(sources[kept]) == kept and np.all(factors[kept] == 1.0)
    assert set(sources[[4, 6]]) <= {3, 7} and np.all(np.isin(factors[[4, 6]], [0.8, 1.2]))
    again = pbt.choose(scores, eligible, 0.3, (0.8, 1.2), 2, np.random.default_rng(0))
    assert np.array_equal(again[0], sources) and np.array_equal(again[1], factors)  # a seeded choice
    rng = np.random.default_rng(0)  # the reference: one source, then one factor per field, per replaced run
    for run in (4, 6):
        assert sources[run] == rng.choice(np.array([3, 7])) and list(factors[run]) == list(rng.choice([0.8, 1.2], 2))
    # ties rank by index: of runs 1, 2 and 6 (3.0 each), 6 ranks last and is replaced with run 4 (1.0)
    tied = np.array([5.0, 3.0, 3.0, 9.0, 1.0, 7.0, 3.0, 8.0])
    moved = pbt.choose(tied, np.ones(8, bool), 0.25, (1.0,), 1, rng)[0] != np.arange(8)
    assert list(np.flatnonzero(moved)) == [4, 6]
    assert list(pbt.choose(scores, np.ones(8, bool), 0.1, (2.0,), 1, rng)[0]) == list(range(8))  # floor(0.8): none
    # with three scores, one top run and one replaced (a top run is never replaced); with none scored, none is
    few = np.array([np.nan, 2.0, np.nan, 5.0, np.nan, 1.0, np.nan, np.nan])
    assert list(np.flatnonzero(pbt.choose(few, np.ones(8, bool), 0.25, (1.0,), 1, rng)[0] != np.arange(8))) == [5]
    assert list(pbt.choose(np.full(8, np.nan), np.ones(8, bool), 0.5, (1.0,), 1, rng)[0]) == list(range(8))
    # every diverged run is replaced, past the fraction; with none alive, none is
    dead = np.array([True, False, False, False, True, False, True, True])
    assert sorted(np.flatnonzero(pbt.choose(scores, dead, 0.25, (1.0,), 1, rng)[0] != np.arange(8))) == [1, 2, 3, 5]
    assert list(pbt.choose(scores, np.zeros(8, bool), 0.5, (1.0,), 1, rng)[0]) == list(range(8))


def test_fields_training_never_reads_are_refused_and_a_fixed_temperature_follows_its_field():
    """SAC's initial_alpha with a learned temperature, alpha_learning_rate with a fixed one and DQN's tau with hard
    target copies change nothing after init: perturbing them is refused. A fixed temperature is the traced
    initial_alpha (it was params.log_alpha, set once at init: a population step's new value changed nothing)."""
    sac = {"algo": "sac", "env": {"name": "gymnax/Pendulum-v1"}, "total_env_steps": 64, "num_chunks": 4}
    sac["agent"] = {"num_envs": 2, "learning_starts": 0, "batch_size": 8, "buffer_size": 64}
    sac["agent"].update(actor={"hidden": [8]}, critic={"hidden": [8]})
    cases = [
        (sac, "initial_alpha", "with autotune_alpha: true it is read once"),
        (
            merge(sac, {"agent": {"autotune_alpha": False}}),
            "alpha_learning_rate",
            "read only with autotune_alpha: true",
        ),
        ({"algo": "dqn", "total_env_steps": 4096, "num_chunks": 4}, "tau", "read only with target_update: polyak"),
    ]
    for data, name, why in cases:
        config = driver.build_config(data)
        plan = driver.plan_for(config)
        with pytest.raises(ConfigError, match=f"^pbt.fields: agent.{name} would change nothing in group 0: {why}"):
            pbt.check_group(pbt.PBTSpec((f"agent.{name}",)), plan, config, 8, 0)
    config = driver.build_config(merge(sac, {"agent": {"autotune_alpha": False, "initial_alpha": 0.2}}))
    pbt.check_group(pbt.PBTSpec(("agent.initial_alpha",)), driver.plan_for(config), config, 8, 0)
    experiment = driver.Experiment(config)
    state = experiment.init(0)
    state = state.replace(hparams=state.hparams.replace(initial_alpha=np.float32(0.05)))  # as a population step
    _, metrics = experiment.run_chunk(state, 0)
    assert metrics["alpha"] == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="pbt.every: 4 chunk.s. between steps, but group 0 trains 4 chunk.s. and"):
        pbt.check_group(pbt.PBTSpec(("agent.initial_alpha",), every=4), driver.plan_for(config), config, 8, 0)


def test_resampling_draws_fields_from_their_grid_or_random_axis():
    """With ``resample`` a replaced run's field is, with that probability, a fresh draw from its prior (grid
    values, or a uniform / log-uniform axis) instead of a perturbation; the draw order is the documented one."""
    scores, alive = np.arange(8.0), np.ones(8, bool)
    field_priors = ((1e-4, 1e-3, 1e-2), sweep.RandomAxis(1e-5, 1e-1, log=True))
    sources, factors, fresh = pbt.choose(
        scores, alive, 0.25, (0.8, 1.2), 2, np.random.default_rng(3), 0.5, field_priors
    )
    rng = np.random.default_rng(3)
    expected = np.full((8, 2), np.nan)
    for run in (0, 1):  # the worst two, copies of 6 or 7
        assert sources[run] == rng.choice(np.array([7, 6])) and list(factors[run]) == list(rng.choice([0.8, 1.2], 2))
        for j, u in enumerate(rng.uniform(size=2)):
            if u < 0.5:
                expected[run, j] = (
                    [1e-4, 1e-3, 1e-2][rng.integers(3)]
                    if j == 0
                    else float(np.exp(np.log(1e-5) + rng.uniform() * np.log(1e4)))
                )
    np.testing.assert_array_equal(fresh, expected)
    always = pbt.choose(scores, alive, 0.25, (0.8,), 2, np.random.default_rng(4), 1.0, field_priors)[2]
    assert np.isnan(always[2:]).all() and set(always[:2, 0]) <= {1e-4, 1e-3, 1e-2}
    assert np.all((always[:2, 1] >= 1e-5) & (always[:2, 1] <= 1e-1))
    # apply: a fresh value replaces the perturbed one, NaN keeps the perturbation
    config = driver.build_config(
        {"algo": "ppo", "agent": {"num_envs": 2, "policy": {"hidden": [4]}, "value": {"hidden": [4]}}}
    )
    experiment = driver.Experiment(config)
    traced = {f: np.full(2, getattr(config.agent, f), np.float32) for f in traced_fields(type(config.agent))}
    traced = {f: v for f, v in traced.items() if not np.isnan(v).any()}
    state = jax.jit(jax.vmap(experiment.init_fn))(jax.vmap(driver.init_key)(np.arange(2)), traced)
    moved = pbt.apply(
        state,
        np.array([0, 0]),
        np.array([[1.0], [1.2]]),
        np.ones(2, bool),
        ("agent.learning_rate",),
        type(config.agent),
        np.array([[np.nan], [0.5]]),
    )
    np.testing.assert_allclose(moved.hparams.learning_rate, [config.agent.learning_rate, 0.5])
    assert pbt.replaced_count(0.29, 100) == 29  # 0.29 * 100 is 28.999999999999996 in floats


def test_exploit_copies_a_whole_off_policy_state_but_its_key_and_keeps_fields_in_range():
    """DQN: networks, optimizer, replay buffer and envs come from the source; the key stays the run's own; a
    perturbed field is clipped to its declared range (``le=1``), and a strict bound keeps the source's value."""
    config = driver.build_config(
        {
            "algo": "dqn",
            "total_env_steps": 256,
            "num_chunks": 1,
            "agent": {"num_envs": 4, "buffer_size": 64, "learning_starts": 16, "batch_size": 8, "q": {"hidden": [8]}},
        }
    )
    experiment = driver.Experiment(config)
    keys = jax.vmap(driver.init_key)(np.arange(3))
    traced = {f: np.full(3, getattr(config.agent, f), np.float32) for f in traced_fields(type(config.agent))}
    traced = {f: v for f, v in traced.items() if not np.isnan(v).any()}  # a field that is off (null) is left out
    traced.update(epsilon_start=np.array([0.9, 0.5, 0.95], np.float32), tau=np.array([0.5, 0.9, 1.0], np.float32))
    state = jax.jit(jax.vmap(experiment.init_fn))(keys, traced)
    state, _ = jax.jit(jax.vmap(experiment.chunk_fn, in_axes=(0, None)))(state, np.int32(16))  # filled buffers
    sources, factors = np.array([0, 0, 1]), np.array([[1.0, 1.0], [1.2, 1.2], [0.8, 1.2]])
    alive = np.array([True, True, False])  # run 2 diverged: its key comes from its source
    fields = ("agent.epsilon_start", "agent.tau")
    moved = jax.jit(lambda s: pbt.apply(s, sources, factors, alive, fields, type(config.agent)))(state)
    one = lambda tree, r: jax.tree.map(lambda x: x[r], tree.replace(key=None, hparams=None))  # noqa: E731
    for run, source in enumerate(sources):
        assert tree_equal(one(moved, run), one(state, source))
        own = state.key[run if alive[run] else source]
        own = own if run == source else jax.random.fold_in(own, run)  # a copy's draws differ from its source's
        assert np.array_equal(moved.key[run], own)
    assert not tree_equal(one(state, 0).loop.buffer, one(state, 1).loop.buffer)  # so the copies above say something
    np.testing.assert_allclose(moved.hparams.epsilon_start, [0.9, 1.0, 0.4], rtol=1e-6)  # le=1: 1.08 clipped
    np.testing.assert_allclose(moved.hparams.tau, [0.5, 0.6, 1.0], rtol=1e-6)  # le=1: 0.9 * 1.2 clipped
    assert np.array_equal(moved.hparams.gamma, state.hparams.gamma)  # a field not perturbed comes from the source
    consistency = algos.get("consistency_ac").Config  # ema_decay: ge=0, lt=1, a strict bound
    kept = pbt._bounded(consistency, "ema_decay", np.float32(0.995), np.float32(0.995 * 1.2))
    assert kept == np.float32(0.995) and pbt._bounded(consistency, "ema_decay", 0.9, 0.72) == 0.72


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("pbt")
    out = str(root / "whole")
    result = sweep.run(sweep.spec_from_dict(SPEC), out, progress=False)
    return {"root": root, "dir": out, "result": result}


def rows_of(sweep_dir, name):
    """A run's metric rows without the wall-clock field, which no two runs share."""
    with open(os.path.join(sweep_dir, "runs", name, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k != "steps_per_second"} for line in f]


def checkpoint(sweep_dir, name, chunk):
    experiment = driver.Experiment(driver.load_run_config(os.path.join(sweep_dir, "runs", name)))
    checkpointer = Checkpointer(os.path.join(sweep_dir, "runs", name, "checkpoints"))
    try:
        return checkpointer.restore(chunk, experiment.abstract_state())[0]
    finally:
        checkpointer.close()


def test_each_step_replaces_the_worst_runs_with_perturbed_copies_of_the_best(population):
    out, runs = population["dir"], population["result"].runs
    names = [r["run"] for r in runs]
    rows = {name: rows_of(out, name) for name in names}
    for chunk in range(3):  # steps after chunks 1-3, none after the last
        returns = np.array([rows[n][chunk]["eval/episode_return"] for n in names])
        sources = [rows[n][chunk]["pbt/source"] for n in names]
        replaced = [i for i, s in enumerate(sources) if s != -1]
        assert len(replaced) == 2  # floor(0.25 * 8)
        order = sorted(range(8), key=lambda i: (-returns[i], i))
        assert sorted(replaced) == sorted(order[-2:]) and all(sources[i] in order[:2] for i in replaced)
        for i in replaced:
            target, source = checkpoint(out, names[i], chunk + 1), checkpoint(out, names[sources[i]], chunk + 1)
            assert tree_equal(target.params, source.params) and tree_equal(target.opt_state, source.opt_state)
            assert not np.array_equal(target.key, source.key)
            ratio = rows[names[i]][chunk]["pbt/clip_epsilon"] / rows[names[sources[i]]][chunk]["pbt/clip_epsilon"]
            assert ratio == pytest.approx(0.8, rel=1e-6) or ratio == pytest.approx(1.2, rel=1e-6)
            assert rows[names[i]][chunk]["pbt/learning_rate"] == rows[names[sources[i]]][chunk]["pbt/learning_rate"]
            for field in ("learning_rate", "clip_epsilon"):  # logged: the values the next chunk trains with
                assert float(target.hparams.get(field)) == pytest.approx(rows[names[i]][chunk][f"pbt/{field}"])
    assert all("pbt/source" not in rows[n][3] for n in names)
    assert [r["pbt/learning_rate"] for r in runs] == [rows[n][3]["pbt/learning_rate"] for n in names]  # summary
    assert [r["agent.learning_rate"] for r in runs] == [1e-4, 1e-4, 1e-3, 1e-3, 3e-3, 3e-3, 1e-2, 1e-2]  # started
    assert [(row["group"], row["runs"]) for row in population["result"].table] == [(0, 8)]  # one population
    assert "seeds" not in population["result"].table[0]  # a population's size is its runs (was labelled seeds)
    assert "agent.learning_rate" not in population["result"].table[0]  # no run kept its starting value
    with pytest.raises(ConfigError, match="^setting_table: these runs trained as populations"):
        sweep.setting_table(runs)  # rows per starting setting, which no run kept
    assert sweep.setting_table(runs, spec=sweep.spec_from_dict(SPEC)) == population["result"].table
    assert list(plot.curves(out)) == ["population"] and plot.curves(out)["population"]["runs"] == 8
    _, table = evaluate.evaluate_sweep(out, 2)
    assert [(row["group"], row["runs"], row["missing"]) for row in table] == [(0, 8, 0)]


def test_a_stopped_population_resumes_bitwise(population, capsys):
    out = str(population["root"] / "split")
    first = sweep.run(sweep.spec_from_dict(SPEC), out, progress=False, stop_after_chunks=2)
    assert first.status == "stopped"
    assert cli.main(["sweep", "--resume", out, "--quiet"]) == 0
    for name in ("h00-seed0", "h02-seed1", "h03-seed1"):
        assert rows_of(out, name) == rows_of(population["dir"], name)
        assert tree_equal(checkpoint(out, name, 4), checkpoint(population["dir"], name, 4))


def test_resampled_copies_train_with_values_from_the_grid(population):
    spec = {**SPEC, "pbt": {"fields": ["agent.learning_rate"], "resample": 1.0}}
    out = str(population["root"] / "resampled")
    result = sweep.run(sweep.spec_from_dict(spec), out, progress=False, stop_after_chunks=2)
    grid = {float(np.float32(v)) for v in SPEC["grid"]["agent.learning_rate"]}
    replaced = 0
    for name in [r["run"] for r in result.runs]:
        rows = rows_of(out, name)
        for chunk in range(2):
            if rows[chunk]["pbt/source"] != -1:
                replaced += 1
                assert rows[chunk]["pbt/learning_rate"] in grid
                assert float(checkpoint(out, name, chunk + 1).hparams.learning_rate) in grid
    assert replaced == 4  # two per step


def test_a_diverged_run_waits_for_the_next_step_and_continues_as_a_copy(population, capsys):
    """Learning rate 1e30 diverges in chunk 1 in both seeds; with steps every 2 chunks the two runs log a
    ``diverged`` row, fill the bottom fraction at the step after chunk 2 as copies of the best two (their key
    folded from the source's) and train on; a sweep stopped while they wait resumes bitwise."""
    spec = {
        **SPEC,
        "grid": {"agent.learning_rate": [1e-3, 3e-3, 1e-2, 1e30]},
        "pbt": {"fields": ["agent.clip_epsilon"], "every": 2},
    }
    out = str(population["root"] / "revived")
    result = sweep.run(sweep.spec_from_dict(spec), out, progress=False)
    err = capsys.readouterr().err
    names = [r["run"] for r in result.runs]
    living = [n for n in names if not n.startswith("h03")]
    returns = np.array([rows_of(out, n)[1]["eval/episode_return"] for n in living])
    best = {names.index(living[i]) for i in sorted(range(6), key=lambda i: (-returns[i], i))[:2]}
    assert all(rows_of(out, n)[1]["pbt/source"] == -1 for n in living)  # the two diverged runs fill the fraction
    for name in ("h03-seed0", "h03-seed1"):
        rows = rows_of(out, name)
        assert rows[0] == {"chunk": 1, "env_steps": 512, "diverged": True} and [r["chunk"] for r in rows] == [
            1,
            2,
            3,
            4,
        ]
        source = rows[1]["pbt/source"]
        assert source in best and "train/episode_return" not in rows[1]
        assert f"diverged run {name} continues as a copy of {names[source]}" in err
        target, copied = checkpoint(out, name, 2), checkpoint(out, names[source], 2)
        assert tree_equal(target.params, copied.params)
        assert np.array_equal(target.key, jax.random.fold_in(copied.key, names.index(name)))
        assert rows[1]["pbt/learning_rate"] == rows_of(out, names[source])[1]["pbt/learning_rate"]  # inherited
        assert np.isfinite(rows[3]["eval/episode_return"]) and result.runs[names.index(name)]["status"] == "completed"
    curve = plot.curves(out)["population"]
    assert list(curve["env_steps"]) == [512, 1024, 1536, 2048] and curve["runs"] == 8  # chunk 1 over 6 runs
    split = str(population["root"] / "revived_split")
    sweep.run(sweep.spec_from_dict(spec), split, progress=False, stop_after_chunks=1)
    assert json.load(open(os.path.join(split, "runs", "h03-seed0", "summary.json")))["status"] == "diverged"
    open(os.path.join(split, "runs", "h03-seed0", "metrics.jsonl"), "w").close()  # as logged before 2026-12-05
    assert cli.main(["sweep", "--resume", split, "--quiet"]) == 0
    for name in names:
        assert rows_of(split, name) == rows_of(out, name)
        assert tree_equal(checkpoint(split, name, 4), checkpoint(out, name, 4))


def test_a_group_that_starts_over_trains_its_diverged_runs_again(population):
    """Interrupted before its first checkpoint, a group starts over; a run marked diverged then trains again with
    it (it stayed marked, and in a population its log was cut and it waited as a dead run)."""
    over = str(population["root"] / "over")
    sweep.run(sweep.spec_from_dict(SPEC), over, progress=False, stop_after_chunks=1)
    for name in os.listdir(os.path.join(over, "runs")):  # as if interrupted in chunk 1
        shutil.rmtree(os.path.join(over, "runs", name, "checkpoints", "1"))
    summary = os.path.join(over, "runs", "h00-seed0", "summary.json")
    json.dump({**json.load(open(summary)), "status": "diverged"}, open(summary, "w"))  # as if it had diverged
    assert sweep.resume(over, progress=False).status == "completed"
    for name in ("h00-seed0", "h01-seed0", "h03-seed1"):
        assert rows_of(over, name) == rows_of(population["dir"], name)


@pytest.mark.parametrize(
    "pbt_data, message",
    [
        ({"fields": ["agent.num_envs"]}, "pbt.fields: 'agent.num_envs' is not a traced field of ppo"),
        ({"fields": []}, "pbt.fields: expected a non-empty list of traced fields (agent.learning_rate, "),
        ({"fields": ["agent.gamma", "agent.gamma"]}, "pbt.fields: a field given twice"),
        ({"fields": ["agent.gamma"], "fraction": 0.6}, "pbt.fraction: expected a number in (0, 0.5]"),
        ({"fields": ["agent.gamma"], "perturb": [0.8, 0]}, "pbt.perturb: expected a non-empty list of factors > 0"),
        ({"fields": ["agent.gamma"], "every": 0}, "pbt.every: expected a whole number of chunks >= 1; got 0"),
        ({"fields": ["agent.gamma"], "metric": "train/loss"}, "pbt.metric: must be one of eval/episode_return, train"),
        ({"fields": ["agent.gamma"], "explore": "resample"}, "pbt.explore: unknown key; allowed: fields, every"),
        ({"fields": ["agent.max_grad_norm"]}, "pbt.fields: agent.max_grad_norm is null (off) in group 0"),
        ({"fields": ["agent.gamma"], "fraction": 0.1}, "pbt.fraction: 0.1 of group 0's 8 runs replaces none"),
        ({"fields": ["agent.gamma"], "every": 3}, "pbt.every: a step after chunk 3 ranks by eval/episode_return, but"),
        ({"fields": ["agent.gamma"], "resample": 1.5}, "pbt.resample: expected a probability in [0, 1]; got 1.5"),
        ({"fields": ["agent.gamma"], "resample": 0.5}, "pbt.resample: agent.gamma is under neither grid nor random"),
    ],
)
def test_bad_pbt_settings_are_one_line_errors_before_anything_compiles(tmp_path, monkeypatch, pbt_data, message):
    monkeypatch.setattr(driver.Experiment, "init", lambda *a, **k: pytest.fail("trained"))
    config = {**PPO, "eval_every": 2, "agent": {**PPO["agent"], "max_grad_norm": None}}
    with pytest.raises(ConfigError) as info:
        sweep.run(sweep.spec_from_dict({**SPEC, "config": config, "pbt": pbt_data}), str(tmp_path / "s"))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert not os.path.exists(tmp_path / "s")


def test_cli_pbt_flags_and_dry_run(tmp_path, capsys):
    args = ["sweep", "ppo", "--seeds", "4", "--pbt", "agent.learning_rate,agent.entropy_coef", "--pbt-every", "2"]
    assert cli.main([*args, "--set", "eval_every=2", "--dry-run"]) == 0
    assert (
        "; population-based training of agent.learning_rate, agent.entropy_coef every 2 chunk(s): the bottom 25% by "
        "eval/episode_return continue as copies of the top 25%"
    ) in capsys.readouterr().out
    assert cli.main(["sweep", "ppo", "--seeds", "4", "--pbt-every", "2", "--dry-run"]) == cli.EXIT_CONFIG_ERROR
    assert "--pbt-every: needs --pbt FIELD,..." in capsys.readouterr().err
    assert cli.main(["sweep", "ppo", "--seeds", "4", "--pbt-resample", "0.5", "--dry-run"]) == cli.EXIT_CONFIG_ERROR
    assert "--pbt-resample: needs --pbt FIELD,..." in capsys.readouterr().err
    grid = ["--grid", "agent.learning_rate=1e-4,1e-3", "--set", "eval_every=2"]
    assert cli.main([*args, *grid, "--pbt-resample", "0.25", "--dry-run"]) == cli.EXIT_CONFIG_ERROR
    assert "pbt.resample: agent.entropy_coef is under neither grid nor random" in capsys.readouterr().err
    args = ["sweep", "ppo", "--seeds", "4", "--pbt", "agent.learning_rate", "--pbt-every", "2", *grid]
    assert cli.main([*args, "--pbt-resample", "0.25", "--dry-run"]) == 0
    assert "each field drawn afresh from its axis with probability 0.25" in capsys.readouterr().out
    assert cli.main(["sweep", "--resume", str(tmp_path), "--pbt", "agent.gamma"]) == cli.EXIT_CONFIG_ERROR
    assert "--resume: cannot be combined with --pbt" in capsys.readouterr().err
