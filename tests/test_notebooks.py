"""The notebooks run top to bottom with a small budget and produce their outputs."""

import os

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def execute(name, overrides):
    """Runs ``notebooks/<name>.ipynb`` with ``overrides`` injected after its ``parameters`` cell."""
    notebook = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "\n".join(f"{key} = {value!r}" for key, value in overrides.items())
    # A hung kernel prints every thread's stack (captured by pytest) and exits, instead of a silent timeout.
    source += "\nimport faulthandler, sys\nfaulthandler.dump_traceback_later(600, exit=True, file=sys.__stderr__)"
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()
    return notebook


def outputs_of(notebook, kind):
    return [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == kind
    ]


def test_quickstart_runs_and_writes_curve_checkpoint_and_rollout(tmp_path):
    notebook = execute("quickstart", {"TOTAL_ENV_STEPS": 65_536, "OUTPUT_DIR": str(tmp_path)})
    assert (tmp_path / "learning_curve.png").stat().st_size > 10_000
    assert (tmp_path / "rollout.html").read_text().startswith("<!DOCTYPE html>")
    assert os.listdir(tmp_path / "run" / "checkpoints")
    assert not outputs_of(notebook, "error")
    text = "".join(o.get("text", "") for o in outputs_of(notebook, "stream"))
    assert "restores the in-memory state bit for bit: True" in text
    assert (tmp_path / "policy.npz").stat().st_size > 1000 and "actions [" in text  # the exported policy acted


def test_sweep_runs_and_plots_iqm_with_confidence_intervals(tmp_path):
    notebook = execute(
        "sweep",
        {
            "SEEDS": 4,
            "LEARNING_RATES": [3e-4, 1e-3],
            "TOTAL_ENV_STEPS": 16_384,
            "NUM_CHUNKS": 2,
            "OUTPUT_DIR": str(tmp_path),
        },
    )
    for name in ("curves.png", "final.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert len(os.listdir(tmp_path / "runs")) == 8
    assert not outputs_of(notebook, "error")
    assert any("image/png" in o.get("data", {}) for o in outputs_of(notebook, "display_data"))
    tables = [o["data"]["text/markdown"] for o in outputs_of(notebook, "display_data") if "text/markdown" in o["data"]]
    assert any("learning_rate=0.001 | 4 | 16,384 |" in t and "| P(> first) [95% CI] |" in t for t in tables)
