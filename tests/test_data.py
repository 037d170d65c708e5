"""Data: sources, the split, codecs fitted on train only, and every bad-input case as one clear line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import cli, image_task, last_json, table_task, user_error, write_task
from deepstation.config import load_task
from deepstation.data.prepare import prepare
from deepstation.data.sources import read_source
from deepstation.data.split import split_rows
from deepstation.errors import DeepstationError


def prepared(raw: dict):
    task = load_task(raw)
    return prepare(task, read_source(task.data.source, task.data.index))


def test_split_is_deterministic_disjoint_and_stratified():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    a = split_rows(100, 0.2, 0.1, seed=3, strata=labels)
    b = split_rows(100, 0.2, 0.1, seed=3, strata=labels)
    assert all((a[k] == b[k]).all() for k in a)
    assert sorted(np.concatenate(list(a.values()))) == list(range(100))
    for c, n in [(0, 50), (1, 30), (2, 20)]:
        assert (labels[a["valid"]] == c).sum() == round(n * 0.2)
        assert (labels[a["test"]] == c).sum() == round(n * 0.1)
    assert not (split_rows(100, 0.2, 0.1, seed=4, strata=labels)["test"] == a["test"]).all()


def test_table_codec_uses_training_rows_only(table_csv):
    data = prepared(table_task(table_csv))
    train = data.parts["train"].features["features"]["num"]
    assert np.allclose(train.mean(0).numpy(), 0, atol=1e-5) and np.allclose(train.std(0, unbiased=False), 1, atol=1e-4)
    frame = pd.read_csv(table_csv)
    expected_mean = frame.loc[data.parts["train"].rows, "x1"].mean()
    assert data.codecs["features"].state["mean"][0] == pytest.approx(expected_mean)
    assert data.codecs["features"].state["vocab"] == [["blue", "green", "red"]]


def test_categories_unseen_in_training_get_the_unknown_index(table_csv):
    data = prepared(table_task(table_csv))
    codec = data.codecs["features"]
    raw, _ = codec.read(type("T", (), {"frame": pd.DataFrame({"x1": [0.0], "x2": [1.0], "colour": ["purple"]}),
                                       "origin": "x"})())
    assert codec.encode(raw)["cat"].tolist() == [[0]]


def test_parquet_and_csv_give_the_same_tensors(table_csv, tmp_path):
    parquet = tmp_path / "table.parquet"
    pd.read_csv(table_csv).to_parquet(parquet)
    a, b = prepared(table_task(table_csv)), prepared(table_task(parquet))
    assert (a.parts["test"].features["features"]["num"] == b.parts["test"].features["features"]["num"]).all()


def test_image_folder_with_index(image_folder):
    data = prepared(image_task(image_folder))
    x = data.parts["train"].features["image"]["x"]
    assert x.shape[1:] == (1, 8, 8) and data.codecs["image"].state["channels"] == 1
    assert abs(float(x.mean())) < 1e-4


def test_rgb_images_are_resized(tmp_path):
    from PIL import Image

    folder = tmp_path / "rgb"
    folder.mkdir()
    for i in range(10):
        Image.new("RGB", (20 + i, 10), color=(i * 20, 0, 255 - i * 20)).save(folder / f"{i}.png")
    pd.DataFrame({"path": [f"{i}.png" for i in range(10)], "label": [i % 2 for i in range(10)]}).to_csv(
        folder / "index.csv", index=False)
    raw = image_task(folder)
    raw["inputs"][0]["size"] = [6, 12]
    data = prepared(raw)
    assert data.parts["train"].features["image"]["x"].shape[1:] == (3, 6, 12)


def test_builtin_digits():
    frame = read_source("builtin:digits").frame
    assert len(frame) == 1797 and frame["image"][0].shape == (8, 8) and 0 <= frame["image"][0].max() <= 1


# --- bad input: each one line, exit code 2 -------------------------------------------------------

def test_missing_column_suggests(table_csv, tmp_path):
    raw = table_task(table_csv)
    raw["inputs"][0]["columns"] = ["x1", "x3"]
    line = user_error(cli("train", write_task(tmp_path, raw)))
    assert "column `x3`" in line and "inputs.features" in line and "table.csv" in line


def test_text_in_numeric_column_names_row_and_column(table_csv, tmp_path):
    frame = pd.read_csv(table_csv)
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[6, "x2"] = "abc"
    frame.to_csv(table_csv, index=False)
    line = user_error(cli("train", write_task(tmp_path, table_task(table_csv))))
    assert "row 7, column `x2`" in line and "'abc'" in line


def test_empty_value_in_number_output(table_csv, tmp_path):
    frame = pd.read_csv(table_csv)
    frame.loc[2, "price"] = np.nan
    frame.to_csv(table_csv, index=False)
    line = user_error(cli("train", write_task(tmp_path, table_task(table_csv))))
    assert "row 3, column `price`" in line and "an empty value" in line


def test_missing_data_file(tmp_path):
    line = user_error(cli("train", write_task(tmp_path, table_task(tmp_path / "gone.csv"))))
    assert "gone.csv does not exist" in line


def test_empty_data_set(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("x1,x2,colour,price,kind\n")
    assert "has no rows" in user_error(cli("train", write_task(tmp_path, table_task(path))))


def test_unknown_builtin_suggests(tmp_path):
    raw = image_task("builtin:digit")
    assert "Did you mean `digits`?" in user_error(cli("train", write_task(tmp_path, raw)))


def test_undecodable_image_stops_before_training(image_folder, tmp_path):
    (image_folder / "005.png").write_bytes(b"not a png")
    line = user_error(cli("train", write_task(tmp_path, image_task(image_folder))))
    assert "005.png: cannot decode image" in line and "row 6 of" in line and "on_bad_sample: skip" in line
    assert not (tmp_path / "runs").exists()


def test_undecodable_images_can_be_skipped_and_counted(image_folder, tmp_path):
    (image_folder / "005.png").write_bytes(b"not a png")
    (image_folder / "007.png").unlink()
    raw = image_task(image_folder)
    raw["data"]["on_bad_sample"] = "skip"
    result = cli("train", write_task(tmp_path, raw), "--json", "--epochs", "1", check=0)
    summary = last_json(result.stdout)
    assert summary["data"]["skipped"] == 2 and sum(summary["data"]["rows"].values()) == 118
    assert "2 sample(s) could not be decoded" in result.stderr


def test_label_unseen_in_training_is_reported_not_a_crash(table_csv, tmp_path):
    # the split stratifies on the first category output, so the unseen label sits in a second one
    raw = table_task(table_csv, output="kind", kind="category")
    raw["outputs"].append({"name": "tag", "type": "category", "column": "tag"})
    frame = pd.read_csv(table_csv)
    frame["tag"] = np.where(frame["x2"] > 2.5, "a", "b")
    frame.to_csv(table_csv, index=False)
    row = int(prepared(raw).parts["test"].rows[0])
    frame.loc[row, "tag"] = "zzz"
    frame.to_csv(table_csv, index=False)
    result = cli("train", write_task(tmp_path, raw), "--json", check=0)
    summary = last_json(result.stdout)
    assert summary["data"]["unseen_labels"] == {"test/tag": ["zzz"]}
    assert "label(s) 'zzz' never seen in training" in result.stderr
    assert summary["metrics"]["test"]["tag_accuracy"] < 1.0


def test_error_rows_count_from_one_like_a_spreadsheet(table_csv):
    raw = table_task(table_csv)
    frame = pd.read_csv(table_csv)
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[0, "x1"] = "?"
    frame.to_csv(table_csv, index=False)
    with pytest.raises(DeepstationError, match="row 1, column `x1`"):
        prepared(raw)
