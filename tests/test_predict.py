"""Finished runs: evaluate on the same split or other data, predict from tables, images and folders."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

import deepstation
from conftest import cli, image_task, last_json, table_task, user_error
from deepstation.errors import DeepstationError


@pytest.fixture
def table_run(table_csv):
    return deepstation.train(table_task(table_csv, output="kind", kind="category", epochs=5))


@pytest.fixture
def image_run(image_folder):
    return deepstation.train(image_task(image_folder, epochs=2))


def test_evaluate_reproduces_the_summary(table_run):
    result = cli("evaluate", table_run.dir, "--json", check=0)
    assert last_json(result.stdout)["metrics"] == table_run.metrics


def test_evaluate_on_other_data(table_run, table_csv, tmp_path):
    other = tmp_path / "other.csv"
    frame = pd.read_csv(table_csv).head(40)
    frame.loc[0, "kind"] = "unheard-of"
    frame.to_csv(other, index=False)
    result = cli("evaluate", table_run.dir, "--data", other, "--json", check=0)
    out = last_json(result.stdout)
    assert list(out["metrics"]) == ["test"] and out["unseen_labels"] == {"test/kind": ["unheard-of"]}
    assert "never seen in training" in result.stderr


def test_evaluate_needs_the_label_column(table_run, table_csv, tmp_path):
    other = tmp_path / "unlabelled.csv"
    pd.read_csv(table_csv).drop(columns=["kind"]).to_csv(other, index=False)
    assert "column `kind`" in user_error(cli("evaluate", table_run.dir, "--data", other))


def test_predict_a_csv_to_a_file(table_run, table_csv, tmp_path):
    out = tmp_path / "pred.csv"
    cli("predict", table_run.dir, table_csv, "-o", out, check=0)
    frame = pd.read_csv(out)
    assert {"x1", "kind_pred", "kind_prob"} <= set(frame.columns) and len(frame) == 240
    assert set(frame["kind_pred"]) <= {"high", "low"} and frame["kind_prob"].between(0.5, 1).all()
    assert (frame["kind_pred"] == frame["kind"]).mean() > 0.7


def test_predict_to_stdout_and_parquet(table_run, table_csv, tmp_path):
    result = cli("predict", table_run.dir, table_csv, check=0)
    assert result.stdout.splitlines()[0].endswith("kind_pred,kind_prob")
    cli("predict", table_run.dir, table_csv, "-o", tmp_path / "p.parquet", check=0)
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 240


def test_predict_from_python_matches_the_cli(table_run, table_csv):
    frame = deepstation.load(table_run.dir).predict(pd.read_csv(table_csv))
    again = deepstation.load(table_run.dir).predict(str(table_csv))
    assert frame["kind_pred"].tolist() == again["kind_pred"].tolist()


def test_predict_a_folder_and_a_single_image(image_run, image_folder, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ["000.png", "001.png", "002.png"]:
        shutil.copy(image_folder / name, scans / name)
    out = tmp_path / "pred.csv"
    cli("predict", image_run.dir, scans, "-o", out, check=0)
    frame = pd.read_csv(out)
    assert frame["path"].tolist() == ["000.png", "001.png", "002.png"] and frame["digit_pred"].between(0, 9).all()
    single = cli("predict", image_run.dir, scans / "001.png", check=0).stdout.splitlines()
    assert single[0] == "path,digit_pred,digit_prob" and single[1].startswith("001.png,")


def test_predict_an_undecodable_image(image_run, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert "bad.png: cannot decode image" in user_error(cli("predict", image_run.dir, bad))


def test_predict_needs_the_input_columns(table_run, tmp_path):
    path = tmp_path / "few.csv"
    pd.DataFrame({"x1": [1.0]}).to_csv(path, index=False)
    assert "column `x2`" in user_error(cli("predict", table_run.dir, path))


def test_a_folder_that_is_not_a_run(tmp_path):
    line = user_error(cli("evaluate", tmp_path))
    assert "not a deepstation run folder" in line
    assert "not a deepstation run folder" in user_error(cli("predict", tmp_path, tmp_path))
    assert "not a deepstation run folder" in user_error(cli("train", "--resume", tmp_path))


def test_a_checkpoint_holds_only_tensors_and_numbers(table_run):
    import torch

    state = torch.load(table_run.dir / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "epoch", "rng", "shuffle"} <= set(state)


def test_a_corrupt_checkpoint_is_named(table_run):
    (table_run.dir / "best.pt").write_bytes(b"garbage")
    with pytest.raises(DeepstationError, match="best.pt: not a readable checkpoint"):
        deepstation.load(table_run.dir)
