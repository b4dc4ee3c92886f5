"""Sweeps: S seeds x H settings of an algorithm's traced hyperparameters, trained together.

A sweep is expanded into *groups* (one per combination of ``groups`` values: static fields such as
``agent.num_envs`` that change shapes or the program, so each group compiles once) and, inside a group,
*runs* (settings of the vmapped ``grid``/``random`` traced fields x seeds). Each group trains all its runs
in one jitted ``vmap`` of the driver's chunk function, with the run axis sharded over every device of
every process (``jax.distributed``); runs are padded to a multiple of the device count.

Every run gets a standard run directory (``rlx eval``, ``export`` and ``plot`` work on it; it resumes with its
sweep, ``rlx sweep --resume``, which keeps all runs at the same chunk)::

    SWEEP_DIR/sweep.yaml                 the resolved sweep spec (``rlx sweep --resume`` reads it)
    SWEEP_DIR/runs/h<H>-seed<S>/         config.yaml, metrics.jsonl/.csv, checkpoints/<N>/, summary.json
    SWEEP_DIR/summary.csv, summary.json  one row per run: swept values, status, final returns
    SWEEP_DIR/settings.csv               one row per setting: IQM and 95% bootstrap CI over seeds

Seed ``s`` with a setting inside a sweep trains exactly the run ``rlx train`` would with that seed and
those values (same init and eval keys): the initial states are bitwise equal and trained parameters agree to
float32 round-off (XLA's vmapped matmul kernels sum in another order; tested); over a long run such
differences grow as training amplifies them, so returns agree statistically, not digit for digit. With ``pbt`` the runs
of a group train as one population instead (:mod:`rlx.sweep.pbt`).
"""

from rlx.sweep.pbt import PBTSpec
from rlx.sweep.placement import Placement, init_distributed
from rlx.sweep.runner import (
    SweepResult,
    checked_experiments,
    load_spec,
    markdown_table,
    print_notes,
    resume,
    run,
    run_group,
    setting_table,
)
from rlx.sweep.spec import (
    Group,
    Member,
    RandomAxis,
    SweepSpec,
    check_spec,
    expand,
    spec_from_dict,
    spec_to_dict,
    traced_settings,
)

__all__ = [
    "Group",
    "Member",
    "PBTSpec",
    "Placement",
    "RandomAxis",
    "SweepResult",
    "SweepSpec",
    "check_spec",
    "checked_experiments",
    "expand",
    "init_distributed",
    "load_spec",
    "markdown_table",
    "print_notes",
    "resume",
    "run",
    "run_group",
    "setting_table",
    "spec_from_dict",
    "spec_to_dict",
    "traced_settings",
]
