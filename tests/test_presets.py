"""Packaged presets: chosen by (algorithm, env), named by --config, listed by rlx presets, shipped as
package data."""

import dataclasses
import fnmatch
import os
import subprocess
import sys

import pytest

from rlx import cli, driver, presets
from rlx.config import ConfigError, load_yaml

ROOT = os.path.join(os.path.dirname(__file__), "..")


def resolve(argv):
    return cli.resolve_train_config(cli._parser().parse_args(["train", *argv]))


def test_every_preset_has_an_index_entry_and_each_pair_at_most_one_default():
    index = load_yaml(os.path.join(presets.PRESETS_DIR, presets.INDEX))
    assert sorted(index) == presets.names()
    defaults = [(p.algo, env) for p in presets.all_presets() for env in p.default_envs]
    assert len(defaults) == len(set(defaults)), defaults
    assert all(p.reaches != "not recorded" for p in presets.all_presets())
    # a preset written for a family of envs lists its own env first
    assert all(p.default_envs[0] == p.env for p in presets.all_presets() if p.default), [
        p.name for p in presets.all_presets() if p.default and p.default_envs[0] != p.env
    ]


def test_presets_are_package_data():
    """Every preset file matches a package-data glob of pyproject.toml, so a non-editable install has them."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["rlx"]
    package = os.path.dirname(presets.PRESETS_DIR)
    for folder, _, files in os.walk(presets.PRESETS_DIR):
        for file in files:
            relative = os.path.relpath(os.path.join(folder, file), package)
            assert any(fnmatch.fnmatch(relative, g) for g in globs), relative
    assert os.path.realpath(os.path.join(ROOT, "configs")) == os.path.realpath(presets.PRESETS_DIR)


def test_train_picks_the_preset_tuned_for_the_algorithm_and_env_and_says_so(capsys, monkeypatch):
    data = resolve(["sac", "--env", "gymnax/Pendulum-v1"])
    assert data == {**load_yaml(os.path.join(presets.PRESETS_DIR, "sac_pendulum.yaml")), "algo": "sac"}

    def stop(config, *args, **kwargs):
        assert config.total_env_steps == 12000 and config.agent.actor.hidden == (64, 64)
        raise ConfigError("stopped before training")

    monkeypatch.setattr(driver, "train", stop)
    assert cli.main(["train", "sac", "--env", "gymnax/Pendulum-v1", "--out", "unused"]) == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "rlx: using preset sac_pendulum for sac on gymnax/Pendulum-v1 (12,000 env steps; reaches -163" in err
    assert "--no-preset for the algorithm's defaults" in err and "stopped before training" in err
    assert resolve(["sac", "--env", "gymnax/Pendulum-v1", "--no-preset"]) == {
        "algo": "sac",
        "env": {"name": "gymnax/Pendulum-v1"},
    }
    assert resolve(["crossq", "--env", "gymnax/CartPole-v1"]) == {
        "algo": "crossq",
        "env": {"name": "gymnax/CartPole-v1"},
    }
    # flags still win over the preset, and its env options stay unless the flag sets them
    data = resolve(["td3", "--env", "brax/inverted_pendulum?backend=mjx", "--steps", "64", "--set", "agent.tau=0.01"])
    assert data["env"] == {"name": "brax/inverted_pendulum", "backend": "mjx", "episode_length": 1000}
    assert data["total_env_steps"] == 64 and data["agent"]["tau"] == 0.01 and data["agent"]["num_envs"] == 64
    # --config X --env with X's own env keeps X's env options (a positions-only preset trained fully observed)
    assert resolve(["--config", "ppo_gru_cartpole_positions", "--env", "gymnax/CartPole-v1"])["env"]["observe"] == [
        0,
        2,
    ]
    assert resolve(["--config", "ppo_gru_cartpole_positions", "--env", "gymnax/Acrobot-v1"])["env"] == {
        "name": "gymnax/Acrobot-v1"
    }


def test_a_preset_written_for_an_env_family_is_the_default_on_each_and_keeps_its_env_options(capsys):
    family = load_yaml(os.path.join(presets.PRESETS_DIR, "simbav2_locomotion.yaml"))
    assert family["env"] == {"name": "brax/hopper", "backend": "positional", "episode_length": 1000}
    for env in ("brax/hopper", "brax/halfcheetah", "brax/walker2d", "brax/ant"):
        assert presets.default_for("simbav2", env).name == "simbav2_locomotion"
        assert resolve(["simbav2", "--env", env]) == {**family, "env": {**family["env"], "name": env}}
    assert presets.default_for("simbav2", "brax/humanoid") is None
    assert presets.default_for("cqn", "playground/HumanoidRun").name == "cqn_playground_dmc"
    for algo in ("dqn", "pqn", "iterated_dqn", "iqn"):  # one preset per method for the three MinAtar games
        for game in ("Breakout", "Asterix", "Freeway"):
            assert presets.default_for(algo, f"gymnax/{game}-MinAtar").name == f"{algo}_minatar"
    assert cli.main(["presets", "crossq"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert "brax/hopper, brax/halfcheetah, brax/walker2d, brax/ant" in listing["crossq_locomotion"]


def test_config_takes_a_preset_name_from_any_directory(tmp_path, monkeypatch):
    by_path = resolve(["--config", os.path.join(ROOT, "configs", "dqn_cartpole.yaml")])
    monkeypatch.chdir(tmp_path)
    for value in ("dqn_cartpole", "dqn_cartpole.yaml", "configs/dqn_cartpole.yaml"):
        assert resolve(["--config", value]) == by_path
    (tmp_path / "mine.yaml").write_text("algo: dqn\ntotal_env_steps: 10\n")
    assert resolve(["--config", "mine.yaml"]) == {"algo": "dqn", "total_env_steps": 10}
    (tmp_path / "dqn_cartpole").mkdir()  # a folder named like a preset does not hide it (an IsADirectoryError)
    assert resolve(["--config", "dqn_cartpole"]) == by_path
    (tmp_path / "smoke").mkdir()  # nor a suite's
    from rlx import repro

    assert repro.load_suite("smoke").name == "smoke"


def test_unknown_preset_is_a_one_line_error_listing_them(capsys):
    assert cli.main(["train", "--config", "sac_pendulm"]) == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlx: config error: --config sac_pendulm: no such file or packaged preset; presets: a2c_ant,")
    assert "\n" not in err and "sac_pendulum" in err and "_index" not in err


def test_rlx_presets_lists_env_budget_and_what_each_reaches(capsys):
    assert cli.main(["presets", "sac"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert set(lines) == {p.name for p in presets.all_presets() if p.algo == "sac"}
    assert "droq_pendulum" in lines and "gymnax/Pendulum-v1" in lines["sac_pendulum"]
    assert "12,000" in lines["sac_pendulum"] and "IQM over 5 seeds" in lines["sac_pendulum"]
    assert "*" in lines["sac_pendulum"] and "*" not in lines["droq_pendulum"]
    assert cli.main(["presets", "nope"]) == cli.EXIT_CONFIG_ERROR


@pytest.mark.parametrize("base", ["sac_pendulum", "../sac_pendulum.yaml"])
def test_sweep_base_may_name_a_preset(base):
    from rlx import sweep

    spec = sweep.spec_from_dict({"base": base, "seeds": 2}, base_dir=os.path.join(presets.PRESETS_DIR, "sweeps"))
    assert spec.config["algo"] == "sac" and spec.config["total_env_steps"] == 12000


def test_a_config_may_extend_a_preset_or_a_file_next_to_it_and_the_run_records_the_result(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c51.yaml").write_text("extends: dqn_cartpole\nagent:\n  q: {value: c51, v_max: 200.0}\n")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "mine.yaml").write_text(
        "extends: ../c51.yaml\ntotal_env_steps: 1000\nagent: {q: {hidden: [32]}, learning_rate: 1.0e-3}\n"
    )
    base = presets.load("dqn_cartpole")
    data = resolve(["--config", "deeper/mine.yaml"])
    # mappings merge key by key (q keeps its other fields), other values and lists are replaced
    assert data["agent"]["q"] == {"hidden": [32], "value": "c51", "v_max": 200.0}
    assert data == {
        **base,
        "total_env_steps": 1000,
        "agent": {**base["agent"], "q": data["agent"]["q"], "learning_rate": 1.0e-3},
    }
    assert "extends" not in data
    config = driver.build_config(data)
    assert config.algo == "dqn" and config.agent.q.value == "c51" and config.agent.q.hidden == (32,)


def test_packaged_presets_that_extend_another_differ_from_it_only_where_they_say():
    td3, ddpg = presets.load("td3_hopper"), presets.load("ddpg_hopper")
    assert ddpg == {**td3, "agent": {**td3["agent"], "num_critics": 1, "policy_noise": 0.0, "policy_delay": 1}}
    dqn, iqn = presets.load("dqn_minatar"), presets.load("iqn_minatar")
    assert iqn["algo"] == "iqn" and iqn["env"] == dqn["env"] and iqn["total_env_steps"] == dqn["total_env_steps"]
    assert iqn["agent"]["q"] == {**dqn["agent"]["q"], "dueling": False, "value": "quantile"}
    assert {k: v for k, v in iqn["agent"].items() if k in dqn["agent"] and k not in ("q", "double_q")} == {
        k: v for k, v in dqn["agent"].items() if k not in ("q", "double_q")
    }
    assert presets.load("dqn_acrobot") == {**presets.load("dqn_cartpole"), "env": {"name": "gymnax/Acrobot-v1"}}
    sac, mdpo = presets.load("sac_inverted_pendulum"), presets.load("mdpo_offpolicy_inverted_pendulum")
    assert mdpo["algo"] == "mdpo_offpolicy" and {k: mdpo["agent"][k] for k in sac["agent"]} == sac["agent"]
    index = {p.name: p for p in presets.all_presets()}
    assert index["iqn_minatar"].algo == "iqn" and index["ddpg_hopper"].env == "brax/hopper"


@pytest.mark.parametrize(
    "text, message",
    [
        ("extends: dqn_cartpol\n", "mine.yaml: extends dqn_cartpol: no such file next to it and no such packaged"),
        ("extends: [dqn_cartpole]\n", "mine.yaml: extends: expected a packaged preset name or a YAML path, got"),
        ("extends: _index\n", "mine.yaml: extends _index: no such file next to it and no such packaged preset"),
        ("extends: other.yaml\n", "other.yaml: extends mine.yaml: a cycle (mine.yaml -> other.yaml -> mine.yaml)"),
    ],
)
def test_a_bad_extends_is_a_one_line_error_naming_the_file(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(text)
    (tmp_path / "other.yaml").write_text("extends: mine.yaml\n")
    with pytest.raises(ConfigError) as info:
        presets.load("mine.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_build_config_refuses_an_unresolved_extends():
    with pytest.raises(ConfigError, match="^extends: 'dqn_cartpole' is resolved when a file is read; load it with"):
        driver.build_config({"extends": "dqn_cartpole"})


def test_print_config_shows_the_full_resolved_config_and_builds_nothing(capsys, monkeypatch, tmp_path):
    import yaml

    from rlx import host

    def never(*args, **kwargs):
        raise AssertionError("--print-config must not train")

    monkeypatch.setattr(driver, "train", never)
    argv = ["train", "td3", "--config", "ddpg_hopper", "--set", "agent.tau=0.01", "--print-config"]
    assert cli.main(argv) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = driver.build_config(resolve(argv[1:-1]))
    assert driver.build_config(printed) == expected  # complete: it runs as --config as it stands
    assert printed["agent"]["tau"] == 0.01 and printed["agent"]["num_critics"] == 1 and "noise_clip" in printed["agent"]
    host.write_config(str(tmp_path), expected)  # a run directory's record prints the same
    assert cli.main(["train", "--resume", str(tmp_path), "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == printed
    one_chunk = dataclasses.replace(expected, num_chunks=1)  # --steps extends a resumed run: print the extension
    host.write_config(str(tmp_path), one_chunk)
    longer = 2 * one_chunk.total_env_steps
    assert cli.main(["train", "--resume", str(tmp_path), "--steps", str(longer), "--print-config"]) == 0
    assert driver.build_config(yaml.safe_load(capsys.readouterr().out)) == driver.extended_config(one_chunk, longer)
    assert cli.main(["train", "td3", "--config", "ddpg_hopper", "--set", "agent.tau=-1", "--print-config"]) == 2
    assert "agent.tau" in capsys.readouterr().err


def test_a_listing_piped_into_head_ends_without_a_traceback():
    done = subprocess.run(
        f"{sys.executable} -m rlx.cli presets | head -1", shell=True, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.startswith("preset") and "Traceback" not in done.stderr, done.stderr
