"""notebooks/: stored without outputs, parameterised, and executed headless on a quickstart run."""

import re
import sys
from pathlib import Path

import nbformat
import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_a_checkpoint_notebook():
    assert ROOT / "notebooks" / "explore_checkpoints.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs_and_take_parameters(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


def execute(path: Path, parameters: str, workdir: Path) -> nbformat.NotebookNode:
    """Run a notebook headless (nbclient, IPC transport) with `parameters` injected after the
    cell tagged `parameters`, as papermill does; returns the executed notebook."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(parameters))
    # IPC sockets in the test's directory instead of TCP ports; the kernel runs this Python.
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    manager.kernel_spec.argv[0] = sys.executable
    NotebookClient(nb, km=manager, timeout=600,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    """Every output of the executed notebook of `kind` ("text" streams or a MIME type)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "text" and out.output_type == "stream":
                found.append(out.text)
            elif kind != "text" and kind in out.get("data", {}):
                found.append(out.data[kind])
    return found


@pytest.mark.slow
def test_checkpoint_notebook_executes_on_a_quickstart_run(quickstart_run, tmp_path):
    nb = execute(ROOT / "notebooks" / "explore_checkpoints.ipynb",
                 f"run_dir = {str(quickstart_run)!r}\nmax_new_tokens = 12", tmp_path)
    text = "".join(outputs(nb, "text"))
    line = next(x for x in text.splitlines() if x.startswith("perplexity per checkpoint:"))
    values = [float(v) for v in re.findall(r"([\d.]+) \(step-\d+\)", line)]
    assert len(values) == 3 and values[0] > values[-1]
    assert re.findall(r"\((step-\d+)\)", line) == ["step-50", "step-100", "step-150"]
    # Curves, then perplexity against tokens and energy: two figures.
    assert len(outputs(nb, "image/png")) == 2
    tables = outputs(nb, "text/markdown")
    assert any(t.startswith("| Processed Tokens | Perplexity |") for t in tables)
    generations = "".join(outputs(nb, "text/html"))
    for prompt in ("A capivara é", "O Brasil é um país", "Era uma vez uma menina que"):
        assert prompt in generations
    assert not list(quickstart_run.glob("*.ipynb"))  # nothing written into the run
