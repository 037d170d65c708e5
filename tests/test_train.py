"""The trainer: a complete run folder, learning, determinism, resume, divergence, stopping rules."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import deepstation
from conftest import cli, image_task, last_json, table_task, write_task
from deepstation.errors import DeepstationError, TrainingError
from deepstation.run import RunFolder


def test_a_run_folder_holds_everything(table_csv):
    run = deepstation.train(table_task(table_csv))
    files = {p.name for p in run.dir.iterdir()}
    assert {"run.json", "config.yaml", "preprocess.json", "metrics.jsonl", "checkpoint.pt", "best.pt",
            "summary.json"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    lines = [json.loads(ln) for ln in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2, 3]
    assert set(run.metrics) == {"train", "valid", "test"}
    assert set(run.metrics["test"]) == {"loss", "mae", "rmse", "mape"}
    assert json.loads((run.dir / "run.json").read_text())["status"] == "completed"
    assert deepstation.load(run.dir).task == run.task


def test_it_learns_a_regression(table_csv):
    run = deepstation.train(table_task(table_csv, epochs=40))
    prices = pd.read_csv(table_csv)["price"]
    guess_the_mean = float(np.mean(np.abs(prices - prices.mean())))
    assert run.metrics["test"]["mae"] < 0.25 * guess_the_mean


def test_it_learns_a_classification_from_images(image_folder):
    run = deepstation.train(image_task(image_folder, epochs=15, learning_rate=0.01))
    assert run.metrics["train"]["accuracy"] > 0.5  # 10 classes from 72 images, 15 epochs of a 4-channel CNN


def test_an_mlp_reads_flattened_images(image_folder):
    raw = image_task(image_folder, epochs=1)
    raw["model"]["encoders"]["image"] = {"kind": "mlp", "width": 8, "depth": 1}
    assert deepstation.train(raw).summary["parameters"] == 64 * 8 + 8 + 8 * 10 + 10


def test_same_seed_same_metrics(table_csv):
    a = deepstation.train(table_task(table_csv)).metrics
    b = deepstation.train(table_task(table_csv)).metrics
    c = deepstation.train(table_task(table_csv, seed=1)).metrics
    assert a == b and a != c


def _interrupt_after(monkeypatch, epoch: int):
    real = RunFolder.save_checkpoint

    def save_then_stop(self, state):
        real(self, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "save_checkpoint", save_then_stop)


def _history(run_dir):
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in ln.items() if k not in ("seconds", "samples_per_s")} for ln in lines]


@pytest.mark.parametrize("schedule", ["constant", "onecycle"])
def test_resume_ends_like_an_uninterrupted_run(table_csv, monkeypatch, schedule):
    raw = table_task(table_csv, epochs=5, schedule=schedule, checkpoint_every=0)  # a checkpoint every epoch
    raw["model"]["encoders"]["features"]["dropout"] = 0.3  # the random state must be restored too
    whole = deepstation.train(raw)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            deepstation.train(raw)
    run_dir = next(p for p in (whole.dir.parent).iterdir() if p != whole.dir)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    with pytest.raises(DeepstationError, match="incomplete"):
        deepstation.load(run_dir)
    resumed = deepstation.train(None, resume=run_dir)
    assert resumed.dir == run_dir
    assert resumed.metrics == whole.metrics
    assert _history(run_dir) == _history(whole.dir)


def test_a_killed_run_is_marked_and_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    raw = image_task("builtin:digits", epochs=200)
    raw["inputs"][0]["column"] = "image"
    task = write_task(tmp_path, raw)
    child = subprocess.Popen([sys.executable, "-m", "deepstation", "train", str(task), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    metrics = None
    while time.monotonic() < deadline and child.poll() is None:
        found = list((tmp_path / "runs").glob("*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            metrics = found[0]
            break
        time.sleep(0.05)  # polling for a file, not waiting out a guess
    assert metrics is not None, child.stderr.read() if child.poll() is not None else "no epoch in 120 s"
    child.send_signal(signal.SIGKILL)
    child.wait()
    run_dir = metrics.parent
    assert RunFolder(run_dir).status() == "killed"
    line = cli("evaluate", run_dir).stderr.strip()
    assert "incomplete (status: killed)" in line and "--resume" in line
    result = cli("train", "--resume", run_dir, "--epochs", "3", "--json", check=0)
    assert last_json(result.stdout)["run_dir"] == str(run_dir.resolve())
    assert RunFolder(run_dir).status() == "completed"


def test_a_diverging_loss_stops_and_keeps_the_last_good_checkpoint(table_csv, monkeypatch):
    from deepstation.models.assemble import TaskModel

    real, calls = TaskModel.loss, {"n": 0}

    def loss(self, out, targets):
        value = real(self, out, targets)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 5 + 3:  # 5 steps per epoch: epoch 2, step 3
                return value * float("nan")
        return value

    monkeypatch.setattr(TaskModel, "loss", loss)
    result = cli("train", write_task(table_csv.parent, table_task(table_csv, epochs=4, checkpoint_every=0)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "loss became nan at epoch 2, step 3 of 5; the checkpoint of epoch 1 is kept" in result.stderr
    run_dir = next((table_csv.parent / "runs").iterdir())
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_early_stopping(table_csv, monkeypatch):
    monkeypatch.setattr("deepstation.training.loop.evaluate", lambda *a, **k: {"loss": 1.0, "mae": 1.0})
    run = deepstation.train(table_task(table_csv, epochs=10, patience=2))
    assert run.summary["stopped"] == "early_stop" and run.summary["epochs"] == 3 and run.summary["best_epoch"] == 1


def test_monitor_can_maximise(table_csv, monkeypatch):
    values = iter([0.5, 0.9, 0.7, 0.6])
    monkeypatch.setattr("deepstation.training.loop.evaluate", lambda *a, **k: {"loss": 1.0, "accuracy": next(values)})
    run = deepstation.train(table_task(table_csv, output="kind", kind="category", epochs=4, monitor="accuracy"))
    assert run.summary["best_epoch"] == 2


def test_time_budget_stops_after_the_epoch(table_csv):
    run = deepstation.train(table_task(table_csv, epochs=50, max_minutes=1e-6))
    assert run.summary["stopped"] == "time_budget" and run.summary["epochs"] == 1


def test_max_epochs_env_caps_for_smoke_runs(table_csv, monkeypatch):
    monkeypatch.setenv("DEEPSTATION_MAX_EPOCHS", "2")
    assert deepstation.train(table_task(table_csv, epochs=9)).summary["epochs"] == 2
    monkeypatch.setenv("DEEPSTATION_MAX_EPOCHS", "two")
    with pytest.raises(DeepstationError, match="DEEPSTATION_MAX_EPOCHS"):
        deepstation.train(table_task(table_csv))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_optimizers_and_schedules(table_csv, optimizer, schedule):
    run = deepstation.train(table_task(table_csv, epochs=3, optimizer=optimizer, schedule=schedule,
                                       weight_decay=0.01, grad_clip=1.0))
    lrs = [ln["lr"] for ln in _history(run.dir)]
    assert all(np.isfinite(v) for v in run.metrics["test"].values())
    if schedule == "constant":
        assert lrs == [0.01] * 3
    else:
        assert lrs[-1] < 0.01


def test_huber_loss(table_csv):
    raw = table_task(table_csv)
    raw["outputs"][0]["loss"] = "huber"
    assert np.isfinite(deepstation.train(raw).metrics["test"]["mae"])


def test_unknown_monitor_suggests(table_csv):
    with pytest.raises(DeepstationError, match="Did you mean `mae`"):
        deepstation.train(table_task(table_csv, monitor="mea"))


def test_several_outputs_prefix_their_metrics(table_csv):
    raw = table_task(table_csv)
    raw["outputs"].append({"name": "kind", "type": "category", "column": "kind"})
    metrics = deepstation.train(raw).metrics["test"]
    assert {"loss", "price_mae", "kind_accuracy", "kind_macro_f1"} <= set(metrics)


def test_cli_json_is_the_last_line(table_csv):
    result = cli("train", write_task(table_csv.parent, table_task(table_csv)), "--json", check=0)
    summary = last_json(result.stdout)
    assert {"run", "run_dir", "metrics", "device", "seconds"} <= set(summary)
    assert set(summary["metrics"]) == {"train", "valid", "test"} and summary["device"] == "cpu"


def test_cli_quiet_prints_nothing(table_csv):
    result = cli("train", write_task(table_csv.parent, table_task(table_csv)), "--quiet", check=0)
    assert result.stdout == ""


def test_cli_epochs_and_device_override(table_csv):
    result = cli("train", write_task(table_csv.parent, table_task(table_csv)), "--epochs", "1", "--device", "cpu",
                 "--json", check=0)
    assert last_json(result.stdout)["epochs"] == 1


def test_resume_of_a_finished_run_says_so(table_csv):
    run = deepstation.train(table_task(table_csv))
    assert "already finished" in cli("train", "--resume", run.dir).stderr


@pytest.mark.slow
def test_compile(table_csv):
    run = deepstation.train(table_task(table_csv, compile=True, epochs=2))
    assert np.isfinite(run.metrics["test"]["mae"])
