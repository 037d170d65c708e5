"""When checkpoints are written (trainer.checkpoint_every, signals), what a kill mid-write leaves, and the checks
on the split and the labels made before anything trains."""
from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest
import torch
import yaml

import deepstation
from conftest import cli, table_task, user_error, write_task
from deepstation.run import RunFolder, clean_runs_dir


def _count_checkpoints(monkeypatch) -> list:
    epochs, real = [], RunFolder.save_checkpoint

    def counted(self, state):
        epochs.append(state["epoch"])
        real(self, state)

    monkeypatch.setattr(RunFolder, "save_checkpoint", counted)
    return epochs


@pytest.mark.parametrize("every, written", [(0, [1, 2, 3, 4, 5]), (3600, [5])])
def test_short_epochs_are_checkpointed_every_so_many_seconds_and_always_last(table_csv, monkeypatch, every, written):
    epochs = _count_checkpoints(monkeypatch)
    run = deepstation.train(table_task(table_csv, epochs=5, checkpoint_every=every))
    assert epochs == written
    assert torch.load(run.dir / "checkpoint.pt", weights_only=True)["epoch"] == 5


def test_an_epoch_of_a_second_or_more_is_always_checkpointed():
    from deepstation.training.loop import checkpoint_due

    assert checkpoint_due(1.0, 0.0, 3600) and checkpoint_due(25.0, 25.0, 3600)
    assert not checkpoint_due(0.3, 9.9, 10) and checkpoint_due(0.3, 10.0, 10)
    assert checkpoint_due(0.01, 0.01, 0)


def _signal_during(monkeypatch, sig, call: int) -> None:
    """Send `sig` to this process in the middle of the `call`-th training step."""
    from deepstation.models.assemble import TaskModel

    real, calls = TaskModel.loss, {"n": 0}

    def loss(self, out, targets):
        if self.training:
            calls["n"] += 1
            if calls["n"] == call:
                os.kill(os.getpid(), sig)  # the handler runs now: it notes the signal, the epoch goes on
        return real(self, out, targets)

    monkeypatch.setattr(TaskModel, "loss", loss)


def _history(run_dir):
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in ln.items() if k not in ("seconds", "samples_per_s")} for ln in lines]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_between_checkpoints_saves_the_epoch_and_resume_is_exact(table_csv, monkeypatch, sig):
    raw = table_task(table_csv, epochs=6, checkpoint_every=3600, schedule="onecycle")
    raw["model"]["encoders"]["features"]["dropout"] = 0.3  # the random state must come back too
    whole = deepstation.train(raw)
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        _signal_during(m, sig, 5 * 2 + 2)  # 5 steps an epoch: epoch 3, step 2
        deepstation.train(raw)
    run_dir = next(p for p in whole.dir.parent.iterdir() if p != whole.dir)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
    resumed = deepstation.train(None, resume=run_dir)
    assert resumed.metrics == whole.metrics
    assert _history(run_dir) == _history(whole.dir)


def test_temporary_files_a_kill_left_are_cleaned_at_the_next_read(table_csv, tmp_path):
    run = deepstation.train(table_task(table_csv, epochs=1))
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no such process
    (run.dir / f".best.pt.{dead}.x1y2.tmp").write_bytes(b"half a checkpoint")
    mine = run.dir / f".summary.json.{os.getpid()}.a1b2.tmp"  # a write in progress (this process): kept
    mine.write_text("{")
    deepstation.load(run.dir)
    assert sorted(p.name for p in run.dir.glob(".*.tmp")) == [mine.name]
    mine.unlink()

    cut_short = run.dir.parent / "tiny-20260101-000000"  # killed between mkdir and run.json
    cut_short.mkdir()
    (cut_short / f".run.json.{dead}.k3j4.tmp").write_text("{")
    clean_runs_dir(run.dir.parent)
    assert not cut_short.exists() and run.dir.exists()


def test_runs_list_tidies_the_runs_folder(table_csv, tmp_path):
    run = deepstation.train(table_task(table_csv, epochs=1))
    cut_short = run.dir.parent / "tiny-20260101-000000"
    cut_short.mkdir()
    (cut_short / f".run.json.{2 ** 22 + 1}.k3j4.tmp").write_text("{")
    assert cli("runs", "list").returncode == 0
    assert not cut_short.exists()


# --- the split and the labels, checked before training ------------------------------------------------------

def _with_split(table_csv, names) -> dict:
    frame = pd.read_csv(table_csv)
    frame["part"] = [names[i % len(names)] for i in range(len(frame))]
    frame.to_csv(table_csv, index=False)
    raw = table_task(table_csv, epochs=1)
    raw["data"]["split"] = {"column": "part"}
    return raw


def test_a_split_without_test_rows_is_refused(table_csv):
    task = write_task(table_csv.parent, _with_split(table_csv, ["train", "train", "valid"]))
    line = user_error(cli("train", task))
    assert "leaves no test rows" in line and "data.split.column `part`" in line
    assert not (table_csv.parent / "runs").exists()


def test_a_split_column_without_valid_rows_gets_them_carved_from_train(table_csv):
    raw = _with_split(table_csv, ["train", "train", "test"])
    raw["trainer"]["monitor"] = "mae"  # a KeyError after the first epoch, once
    run = deepstation.train(raw)
    assert run.summary["monitor"] == "valid.mae" and run.summary["data"]["rows"]["valid"] == 24  # 15 % of 160
    assert any("held out for validation" in n for n in run.summary["data"]["notes"])


def test_a_monitor_without_validation_rows_is_refused_before_training(table_csv):
    raw = _with_split(table_csv, ["train", "train", "test"])
    raw["data"]["split"]["valid"] = 0  # nothing carved
    raw["trainer"]["monitor"] = "mae"
    line = user_error(cli("train", write_task(table_csv.parent, raw)))
    assert "trainer.monitor: `mae` needs validation rows" in line and "monitor `loss`" in line
    assert not (table_csv.parent / "runs").exists()


def test_no_validation_rows_is_said_in_a_warning(table_csv):
    raw = _with_split(table_csv, ["train", "train", "test"])
    raw["data"]["split"]["valid"] = 0
    run = deepstation.train(raw)
    assert any("no validation rows" in w for w in run.summary["warnings"])
    assert run.summary["monitor"] == "train.loss"


def test_a_single_class_output_is_refused_unless_allowed(table_csv):
    frame = pd.read_csv(table_csv)
    frame["kind"] = "high"
    frame.to_csv(table_csv, index=False)
    raw = table_task(table_csv, kind="category", output="kind")
    line = user_error(cli("train", write_task(table_csv.parent, raw)))
    assert "outputs.kind: column `kind` holds one class only ('high')" in line and "allow_single_class" in line
    raw["outputs"][0]["allow_single_class"] = True
    raw["trainer"]["epochs"] = 1
    run = deepstation.train(raw)
    assert run.metrics["test"]["accuracy"] == 1.0
    assert any("one class only" in w for w in run.summary["warnings"])


def test_an_output_among_the_inputs_is_a_warning(table_csv, capsys):
    raw = table_task(table_csv, epochs=1)
    raw["inputs"][0]["columns"].append("price")
    run = deepstation.train(raw)
    assert any("target leakage" in w and "`price`" in w for w in run.summary["warnings"])
    assert "warning: inputs.features reads column `price`" in capsys.readouterr().err


# --- secrets ------------------------------------------------------------------------------------------------

def test_a_password_in_a_url_never_reaches_the_run_folder(postgres_url, tmp_path, monkeypatch):
    import sqlalchemy as sa

    frame = pd.read_csv(_small_table(tmp_path))
    engine = sa.create_engine(postgres_url)
    frame.to_sql("secret_rows", engine, index=False, if_exists="replace")
    engine.dispose()
    password = sa.make_url(postgres_url).password
    assert password
    raw = table_task("unused", epochs=1)
    raw["data"]["source"] = {"sql": {"url": postgres_url, "query": "secret_rows"}}
    run = deepstation.train(raw)
    for path in run.dir.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl"):
            assert password not in path.read_text(), path
    stored = yaml.safe_load((run.dir / "config.yaml").read_text())["data"]["source"]["sql"]["url"]
    assert "${DEEPSTATION_SQL_PASSWORD}" in stored
    monkeypatch.delenv("DEEPSTATION_SQL_PASSWORD", raising=False)
    line = user_error(cli("evaluate", run.dir))
    assert "DEEPSTATION_SQL_PASSWORD" in line and password not in line
    monkeypatch.setenv("DEEPSTATION_SQL_PASSWORD", password)
    assert deepstation.load(run.dir).evaluate()["test"] == run.metrics["test"]


def _small_table(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=80), rng.normal(size=80)
    path = tmp_path / "small.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "colour": ["red", "blue"] * 40, "price": 2 * x1 - x2}).to_csv(path, index=False)
    return path
