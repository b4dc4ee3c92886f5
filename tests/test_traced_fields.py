"""Compiled training code reads traced hyperparameters from the train state, never from its config: the driver
hands compiled functions the config with its traced fields blanked (``driver.compiled_agent``), so a
``config.<traced field>`` there reads None, and an optional feature switched on by one is silently off (LAP's
priority floor) or fails to trace (PPO's clipped value loss): both did until 2026-12-07."""

import ast
import dataclasses
import pathlib

import rlx
from rlx import algos, driver
from rlx.config import traced_fields

HOST_SIDE = {"check", "read_only_at_start"}  # config methods that validate the whole config before compiling


def test_compiled_agent_blanks_every_traced_field_and_keeps_the_static_ones():
    agent = driver.build_config({"algo": "dqn", "agent": {"learning_rate": 1e-3, "priority_floor": 1.0}}).agent
    compiled = driver.compiled_agent(agent)
    for field in dataclasses.fields(agent):
        traced = field.name in traced_fields(type(agent))
        assert getattr(compiled, field.name) == (None if traced else getattr(agent, field.name)), field.name


def test_no_training_function_reads_a_traced_field_from_its_config():
    traced = set()
    for name in algos.ALGORITHMS:
        traced |= set(traced_fields(algos.get(name).Config))
    root = pathlib.Path(rlx.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef) or function.name in HOST_SIDE:
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in traced
                    and isinstance(node.value, ast.Name)
                    and node.value.id in ("config", "agent")
                ):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.value.id}.{node.attr}")
    assert not found, found
