"""The notebooks `deepstation lab` ships: committed without outputs, up to date with their generator, and each
one runs headless, top to bottom, at smoke-test sizes (DEEPSTATION_MAX_EPOCHS=1 and small data)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat: pip install 'deepstation[lab]'")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient: pip install 'deepstation[lab]'")

NOTEBOOKS = ROOT / "deepstation" / "notebooks"


@pytest.fixture
def smoke(tmp_path, monkeypatch) -> Path:
    """Tiny settings, and Jupyter's, IPython's and matplotlib's per-user folders under tmp_path. Returns the
    folder the notebook runs in."""
    home = tmp_path / "home"
    for var, sub in {"HOME": "", "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_CONFIG_DIR": "config",
                     "JUPYTER_DATA_DIR": "data", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib",
                     "DEEPSTATION_DATA_DIR": "cache"}.items():
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("DEEPSTATION_MAX_EPOCHS", "1")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return folder


def execute(name: str, kernel: str, folder: Path):
    """Run the shipped notebook `name` in `folder` with `kernel`; returns it with its outputs."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=300,
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def text_of(notebook) -> str:
    """Every output as text: streams, plain-text results and errors."""
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_ship_without_outputs_and_match_their_generator():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["captions.ipynb", "forecasting.ipynb", "r-tour.ipynb", "tour.ipynb", "transcription.ipynb"]
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert notebook.metadata.kernelspec.name == ("ir" if name == "r-tour.ipynb" else "deepstation")
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "tools" / "make_notebooks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["--check"]) == 0, "run tools/make_notebooks.py and commit the notebooks"


@pytest.fixture(scope="module")
def python_kernel() -> str:
    from deepstation.workstation.kernel import ensure_kernel

    return ensure_kernel()  # the kernel `deepstation lab` registers: this environment's Python


@pytest.mark.parametrize("name, expect, figures", [
    ("captions.ipynb", ["hand-picked features: SegmentAndClassify", "report: "], 2),
    ("forecasting.ipynb", ["hand-picked features: LagRegression", "classical: ets"], 3),
    ("transcription.ipynb", ["hand-picked features: MfccSegments", "transcribed"], 1),
    ("tour.ipynb", ["ready", "probability", "usage: deepstation"], 0),
])
def test_a_python_notebook_runs_headless(name, expect, figures, python_kernel, smoke):
    if name == "transcription.ipynb" and shutil.which("espeak-ng") is None:
        pytest.skip("builtin:speech needs espeak-ng: apt-get install espeak-ng")
    notebook = execute(name, python_kernel, smoke)
    text = text_of(notebook)
    for piece in expect:
        assert piece in text, f"{name}: `{piece}` not in its outputs"
    shown = sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))
    assert shown == figures, f"{name}: {shown} figures shown, expected {figures}"  # also after a report is drawn
    assert list(Path(os.environ["DEEPSTATION_RUNS_DIR"]).iterdir()), "no run folder written"


def test_the_r_notebook_runs_headless_and_reads_a_run(smoke):
    from jupyter_client.kernelspec import KernelSpecManager

    if shutil.which("R") is None:
        pytest.skip("R is not installed: make setup-r")
    if "ir" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("the R kernel `ir` is not registered in this environment: make setup-r")
    # a finished run, where `deepstation compare` leaves one
    run = Path(os.environ["DEEPSTATION_RUNS_DIR"]) / "airline-20260101-120000"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"metrics": {"test": {"mape": 4.321}}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "train": {"loss": 1 / e}}) + "\n"
                                               for e in (1, 2, 3)))
    text = text_of(execute("r-tour.ipynb", "ir", smoke))
    assert "Holt-Winters" in text and "seasonal ARIMA" in text
    assert "airline-20260101-120000 - test MAPE: 4.32 %" in text
