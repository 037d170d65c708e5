"""The MLflow pyfunc flavour: every tracked run's `model/` is an MLflow model that MLflow's own load_model and
`mlflow models serve` use, predicting what Run.predict does."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import deepstation
from conftest import cli, image_task, last_json, table_task


@pytest.fixture
def mlflow_store(monkeypatch):
    """MLflow's own API pointed at deepstation's store (the session's SQLite file)."""
    uri = os.environ["DEEPSTATION_TRACKING_URI"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _registered(raw: dict, name: str):
    run = deepstation.train(raw)
    info = last_json(cli("register", run.id, name, "--json", check=0).stdout)
    return run, info["uri"]


def _rows(table_csv, n=6) -> pd.DataFrame:
    return pd.read_csv(table_csv).drop(columns=["price", "kind"]).head(n)


def test_registered_model_loads_in_mlflow_and_predicts_as_the_run(table_csv, mlflow_store):
    import mlflow.pyfunc

    run, uri = _registered(table_task(table_csv, output="kind", kind="category", epochs=2), "pyfunc-kind")
    model = mlflow.pyfunc.load_model(uri)
    rows = _rows(table_csv)
    got = model.predict(rows)
    pd.testing.assert_frame_equal(got, run.predict(rows.copy()))
    assert list(got.columns) == ["x1", "x2", "colour", "kind_pred", "kind_prob"]
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["x1", "x2", "colour"]
    assert "kind_pred" in signature.outputs.input_names()
    # the input example is a few rows the model reads, made from what the codecs learned
    example = model.input_example
    assert list(example.columns) == ["x1", "x2", "colour"] and set(example["colour"]) <= {"red", "green", "blue"}
    assert len(model.predict(example)) == len(example)
    # deepstation's own models:/ loading reads the same version (its run files)
    assert deepstation.load(uri).metrics == run.metrics


def test_model_layout_in_the_artifact_store(table_csv):
    from deepstation.track.runs import current_store

    run = deepstation.train(table_task(table_csv, epochs=1))
    store = current_store()
    run_id = run.summary["tracking_run_id"]
    found = {a.path: a.is_dir for a in store.call("list_artifacts", run_id, "model")}
    # the run files at the top (a run folder, as before), beside MLflow's files; nothing pickled (model from code)
    assert set(found) == {f"model/{n}" for n in ("config.yaml", "preprocess.json", "best.pt", "summary.json",
                                                 "run.json", "MLmodel", "deepstation_model.py", "requirements.txt",
                                                 "python_env.yaml", "conda.yaml", "input_example.json",
                                                 "serving_input_example.json")}, sorted(found)
    assert not any(found.values())
    local = store.call("download_artifacts", run_id, "model/requirements.txt", str(run.dir.parent))
    assert any(line.startswith("deepstation==") for line in open(local).read().splitlines())


def test_a_run_logged_before_pyfunc_still_registers_and_loads(table_csv, tmp_path, monkeypatch):
    from deepstation.track import tracker

    def raw_files(store, run_id, folder):  # what runs logged before the pyfunc flavour hold: the files in model/
        for name in tracker.MODEL_FILES:
            store.call("log_artifact", run_id, str(folder / name), "model")

    monkeypatch.setattr(tracker, "log_model", raw_files)
    run, uri = _registered(table_task(table_csv, epochs=1), "pyfunc-old-layout")
    rows = _rows(table_csv)
    pd.testing.assert_frame_equal(deepstation.load(uri).predict(rows.copy()), run.predict(rows.copy()))


def test_pyfunc_failure_falls_back_to_the_run_files(table_csv, monkeypatch, capsys):
    import deepstation.serve.pyfunc as pyfunc

    def broken(*args, **kwargs):
        raise RuntimeError("no flavour today")

    monkeypatch.setattr(pyfunc, "log_model", broken)
    run, uri = _registered(table_task(table_csv, epochs=1), "pyfunc-fallback")
    assert "not logged as an MLflow pyfunc model (RuntimeError: no flavour today)" in capsys.readouterr().err
    assert deepstation.load(uri).metrics == run.metrics


def _png_base64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def test_image_model_takes_base64_and_refuses_paths_not_allowed(image_folder, mlflow_store):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from deepstation.serve.frames import RequestError

    run, uri = _registered(image_task(image_folder, epochs=1), "pyfunc-digits")
    files = sorted(image_folder.glob("*.png"))[:5]
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.signature.inputs.input_names() == ["path"]
    got = model.predict(pd.DataFrame({"path": [_png_base64(p) for p in files]}))
    expected = run.predict(pd.DataFrame({"path": [str(p) for p in files]}))
    assert list(got.columns) == ["digit_pred", "digit_prob"]  # the decoded images are no output
    assert got["digit_pred"].tolist() == expected["digit_pred"].tolist()
    assert got["digit_prob"].to_numpy() == pytest.approx(expected["digit_prob"].to_numpy(), abs=1e-6)
    with pytest.raises(MlflowException, match="row 1: expected an image file in base64; file paths are refused") \
            as refused:
        model.predict(pd.DataFrame({"path": [str(files[0])]}))
    assert isinstance(refused.value.__cause__, RequestError)
    allowed = mlflow.pyfunc.load_model(uri, model_config={"allowed": [str(image_folder)], "device": "cpu"})
    by_path = allowed.predict(pd.DataFrame({"path": [str(p) for p in files]}))
    assert by_path["digit_pred"].tolist() == expected["digit_pred"].tolist()


def test_many_series_forecast_with_ids_as_a_param(tmp_path, mlflow_store):
    import mlflow.pyfunc
    import numpy as np

    t = np.arange(48)
    frame = pd.concat([pd.DataFrame({"item": item, "date": pd.date_range("2000-01-01", periods=48, freq="MS"),
                                     "sales": level * (1 + 0.2 * np.sin(2 * np.pi * t / 12))})
                       for item, level in (("a", 100.0), ("b", 50.0), ("c", 10.0))])
    frame.to_csv(tmp_path / "sales.csv", index=False)
    raw = {"name": "shop", "data": {"source": str(tmp_path / "sales.csv"), "split": {"valid": 0.1}},
           "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "id": "item", "date": "date",
                       "window": 12}],
           "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": 3}],
           "model": {"encoders": {"history": {"kind": "mlp", "width": 8, "depth": 1}}},
           "trainer": {"epochs": 1, "batch_size": 16, "device": "cpu"}}
    run, uri = _registered(raw, "pyfunc-shop")
    model = mlflow.pyfunc.load_model(uri)
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["item", "date", "sales"]
    assert signature.params.to_dict()[0]["name"] == "ids"
    history = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).reset_index(drop=True)
    every = model.predict(history)
    assert list(every.columns) == ["id", "step", "date", "forecast"] and len(every) == 9
    pd.testing.assert_frame_equal(every, run.predict(history.copy()))
    only = model.predict(history, params={"ids": ["b"]})
    assert only["id"].tolist() == ["b"] * 3
    assert only["forecast"].to_numpy() == pytest.approx(every[every["id"] == "b"]["forecast"].to_numpy())
    assert len(model.predict(model.input_example)) == 3  # the example: one series, one window


def test_mlflow_models_serve_answers_a_scoring_request(table_csv, mlflow_store, tmp_path):
    import requests
    from pgserver import free_port

    run, uri = _registered(table_task(table_csv, epochs=1), "pyfunc-served")
    port = free_port()
    # MLflow runs `uvicorn` by name: the environment's bin folder is on PATH, as in an activated virtualenv
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline, ready = time.monotonic() + 120, False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
            except requests.ConnectionError:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        assert ready, (tmp_path / "serve.log").read_text()[-3000:]
        rows = _rows(table_csv, 4)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        got = pd.DataFrame(answer.json()["predictions"])
        assert got["price_pred"].to_numpy() == pytest.approx(run.predict(rows.copy())["price_pred"].to_numpy(),
                                                             rel=1e-5)
        # a request that does not fit the signature is the client's fault: 400
        bad = {"dataframe_records": [{"x1": "one", "x2": 2.0, "colour": "red"}]}
        refused = requests.post(f"http://127.0.0.1:{port}/invocations", json=bad, timeout=60)
        assert refused.status_code == 400, refused.text
    finally:
        emptied_by = _stop_group(server)
        log.close()
    assert emptied_by == signal.SIGTERM  # the whole group left on SIGTERM: uvicorn's workers too, none killed


def _stop_group(process: subprocess.Popen, timeout: float = 20.0):
    """SIGTERM to the process's whole group (MLflow's CLI and the uvicorn it starts), then wait for every member
    to leave; SIGKILL to what is left after `timeout` seconds. Returns the signal after which the group was empty
    (None: it was before the first)."""
    emptied_by = None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        emptied_by = sig
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(process):
            time.sleep(0.1)
        if not _group_alive(process):
            break
    process.wait(timeout=5)
    return emptied_by


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader when it has ended
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True
