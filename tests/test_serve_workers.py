"""`deepstation serve --workers N`: processes sharing one port, started warm, stopped together."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import cli, table_task, user_error, wait_until

ROW = {"x1": 0.5, "x2": 1.0, "colour": "red"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from deepstation.run import train

    root = tmp_path_factory.mktemp("workers")
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=80), rng.uniform(0, 5, size=80)
    pd.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["red", "blue"], size=80),
                  "price": 10 + 3 * x1 + x2}).to_csv(root / "table.csv", index=False)
    return train(table_task(root / "table.csv", epochs=1), runs_dir=root / "runs", track=False)


def _serve(run, tmp_path, *args):
    """The server's process and its stderr file, once it says on which port it listens."""
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "deepstation", "serve", str(run.dir), "--port", "0",
                                    *args], stderr=stderr, stdout=subprocess.DEVNULL,
                                   env={**os.environ, "DEEPSTATION_SERVE_TOKEN": ""})
    return process, err


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _request(port: int, method: str, path: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts the workers in /proc")
def test_two_workers_answer_on_one_port_warm_and_stop_together(run, tmp_path):
    process, err = _serve(run, tmp_path, "--workers", "2")
    try:
        wait_until(lambda: "with 2 workers" in err.read_text() or process.poll() is not None, 120, "the workers")
        assert process.poll() is None, err.read_text()
        port = int(re.search(r"on http://127\.0\.0\.1:(\d+) with 2 workers", err.read_text()).group(1))
        expected = run.predict(pd.DataFrame([ROW]))["price_pred"].iloc[0]
        answered_by = set()
        for _ in range(12):  # a new connection each: the kernel hands them to either worker
            status, body = _request(port, "POST", "/invocations", {"dataframe_records": [ROW]})
            assert status == 200 and body["predictions"][0]["price_pred"] == pytest.approx(expected, rel=1e-5)
            answered_by.add(_request(port, "GET", "/version")[1]["process"])
        workers = [pid for pid in _children(process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2 and answered_by <= set(workers)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, err.read_text()
        assert "stopped" in err.read_text() and "Traceback" not in err.read_text()
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
def test_a_worker_that_dies_stops_the_others_and_the_server_exits_1(run, tmp_path):
    process, err = _serve(run, tmp_path, "--workers", "2", "--quiet")
    try:
        wait_until(lambda: "with 2 workers" in err.read_text() or process.poll() is not None, 120, "the workers")
        workers = [pid for pid in _children(process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(timeout=60) == 1
        text = err.read_text()
        assert "exited with -9; the other workers were stopped" in text and "Traceback" not in text
        assert not Path(f"/proc/{workers[1]}").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_mistakes_are_one_line(run, tmp_path):
    line = user_error(cli("serve", run.dir, "--workers", "2", "--replicas", "2"))
    assert "--workers" in line and "--replicas" in line
    line = user_error(cli("serve", "--onnx", tmp_path / "none.onnx", "--workers", "2", "--port", "0"))
    assert "none.onnx" in line
    result = cli("serve", run.dir, "--workers", "0", check=2)  # argparse's refusal: usage, then the line
    assert "argument --workers: expected a positive whole number, got '0'" in result.stderr


def test_a_warm_service_starts_with_empty_metrics(run):
    from deepstation.serve.http import Service

    service = Service(run)
    try:
        assert service.warm()
        text = service.metrics.text()
        assert "deepstation_requests_total{" not in text  # it went past handle(), which counts requests
        assert re.search(r"^deepstation_batch_rows_count 0$", text, re.M), text  # and its pass is forgotten
    finally:
        service.close()
