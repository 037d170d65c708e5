"""Shared fixtures: tiny data made on the spot, run folders in a temp dir, a CLI runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pgserver import postgres_db, postgres_server, postgres_url  # noqa: F401  (a real PostgreSQL for the tests that need one)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test writes runs under its own temp dir and leaves nothing behind in the repo."""
    monkeypatch.setenv("DEEPSTATION_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("DEEPSTATION_MAX_EPOCHS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def _tracking_db(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tracking") / "mlflow.db"


@pytest.fixture(autouse=True)
def _tracking(_tracking_db, tmp_path, monkeypatch):
    """Tracking stays on, into one SQLite file per test session (a new MLflow database costs ~2 s of
    migrations; tests that count runs make their own); model cache and rates file in the temp dir."""
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", f"sqlite:///{_tracking_db}")
    monkeypatch.setenv("DEEPSTATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DEEPSTATION_RATES", str(tmp_path / "rates.yaml"))
    monkeypatch.delenv("DEEPSTATION_ARTIFACT_ROOT", raising=False)


@pytest.fixture
def table_csv(tmp_path) -> Path:
    """A small regression/classification table: y depends on x1, x2 and a colour."""
    rng = np.random.default_rng(0)
    n = 240
    x1, x2 = rng.normal(size=n), rng.uniform(0, 5, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    shift = pd.Series(colour).map({"red": 0.0, "green": 2.0, "blue": -1.0}).to_numpy()
    price = 10 + 3 * x1 + x2 + shift + rng.normal(scale=0.1, size=n)
    kind = np.where(x1 + shift > 0.5, "high", "low")
    path = tmp_path / "table.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "price": price, "kind": kind}).to_csv(path, index=False)
    return path


def table_task(source, output="price", kind="number", **trainer) -> dict:
    return {
        "name": "tiny",
        "data": {"source": str(source), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
        "inputs": [{"name": "features", "type": "table", "columns": ["x1", "x2"], "categorical": ["colour"]}],
        "outputs": [{"name": output, "type": kind, "column": "price" if kind == "number" else "kind"}],
        "model": {"encoders": {"features": {"kind": "mlp", "width": 16, "depth": 1, "dropout": 0.0}}},
        "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "seed": 0, "device": "cpu", **trainer},
    }


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A folder of PNG digits (from scikit-learn's set) with an index.csv of path,label."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for i in range(120):
        name = f"{i:03d}.png"
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(folder / name)
        rows.append({"path": name, "label": int(digits.target[i])})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def image_task(source, **trainer) -> dict:
    return {
        "name": "tiny-images",
        "data": {"source": str(source), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
        "inputs": [{"name": "image", "type": "image", "column": "path", "size": [8, 8]}],
        "outputs": [{"name": "digit", "type": "category", "column": "label"}],
        "model": {"encoders": {"image": {"kind": "cnn", "width": 4, "depth": 2}}},
        "trainer": {"epochs": 2, "batch_size": 32, "seed": 0, "device": "cpu", **trainer},
    }


def write_task(tmp_path, task: dict, name="task.yaml") -> Path:
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(task, sort_keys=False))
    return path


def cli(*args, env=None, check=None, subprocess_=False) -> subprocess.CompletedProcess:
    """Run `deepstation ARGS` as a user would: in this process (fast), or in a child process."""
    args = [str(a) for a in args]
    if subprocess_:
        result = subprocess.run([sys.executable, "-m", "deepstation", *args], capture_output=True, text=True,
                                env={**os.environ, **(env or {})}, timeout=300)
    else:
        import contextlib
        import io

        from deepstation.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(args)
                except SystemExit as exit_:  # argparse
                    code = exit_.code
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check is not None:
        assert result.returncode == check, result.stderr + result.stdout
    return result


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def user_error(result) -> str:
    """Assert a user's mistake: exit code 2, one line on stderr, no traceback. Returns the line."""
    assert result.returncode == 2, result.stderr + result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith(("warning", "epoch"))]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def wait_until(predicate, timeout: float = 60.0, what: str = "a condition"):
    """What `predicate` returns once it is true (polled every 5 ms); fails the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def as_killed(run_dir: Path, last_write: float | None = None) -> None:
    """Make a run folder look like one whose process was killed mid-run: "running", with the pid of a process that
    has exited, on this host; `last_write`: the time its files were last written."""
    import json
    import socket

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    info = json.loads((run_dir / "run.json").read_text())
    info.update(status="running", pid=child.pid, host=socket.gethostname())
    info.pop("ended", None)
    (run_dir / "run.json").write_text(json.dumps(info))
    if last_write is not None:
        for path in run_dir.iterdir():
            os.utime(path, (last_write, last_write))
