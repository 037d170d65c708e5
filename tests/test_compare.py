"""compare: the deep model and the hand-picked baseline on the same split, a table, JSON and an HTML report."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cli, image_task, last_json, table_task, write_task
from deepstation.baselines.features import glyph_features
from deepstation.baselines.image import segment
from deepstation.data.builtin.strips import load as strips


def test_compare_images_writes_a_report(image_folder, tmp_path):
    result = cli("compare", write_task(tmp_path, image_task(image_folder, epochs=2)), "--json", check=0)
    out = last_json(result.stdout)
    assert out["split"] == "test" and set(out["deep"]["metrics"]["test"]) >= {"accuracy", "macro_f1"}
    assert out["baseline"]["name"] == "GlyphClassifier" and 0 <= out["baseline"]["metrics"]["test"]["accuracy"] <= 1
    page = open(out["report"]).read()
    assert page.count("data:image/png;base64,") >= 3 and "Confusion matrix" in page and "hand-picked" in page
    assert "hand-picked features" in result.stderr


def test_compare_a_table_task(table_csv, tmp_path):
    out = last_json(cli("compare", write_task(tmp_path, table_task(table_csv)), "--json", check=0).stdout)
    assert out["baseline"]["name"] == "TableModel" and out["baseline"]["metrics"]["test"]["mae"] > 0


def test_compare_captions_end_to_end(tmp_path):
    raw = {"name": "captions", "data": {"source": "builtin:digit-strips", "options": {"n": 120},
                                        "split": {"column": "split"}},
           "inputs": [{"name": "image", "type": "image", "column": "image"}],
           "outputs": [{"name": "caption", "type": "sequence", "column": "caption", "unit": "word"}],
           "model": {"encoders": {"image": {"kind": "cnn", "width": 4, "depth": 2}}},
           "trainer": {"epochs": 1, "batch_size": 32, "device": "cpu"}}
    out = last_json(cli("compare", write_task(tmp_path, raw), "--json", check=0).stdout)
    assert set(out["deep"]["metrics"]["test"]) == {"loss", "exact_match", "cer", "wer"}
    assert out["baseline"]["name"] == "SegmentAndClassify"
    assert out["baseline"]["metrics"]["train"]["exact_match"] > 0.5


def test_strips_keep_test_glyphs_out_of_training():
    frame = strips(n=60, seed=3)
    again = strips(n=60, seed=3)
    assert frame["caption"].tolist() == again["caption"].tolist()
    assert all(np.array_equal(a, b) for a, b in zip(frame["image"], again["image"]))
    assert set(frame["split"]) <= {"train", "valid", "test"} and frame["image"][0].shape == (16, 96)
    lengths = frame["caption"].str.split().str.len()
    assert lengths.between(3, 6).all()


def test_segmentation_finds_separate_glyphs():
    image = np.zeros((16, 60), dtype=np.float32)
    for x in (2, 20, 40):
        image[3:13, x:x + 10] = 1.0
    assert len(segment(image)) == 3
    assert len(segment(np.zeros((16, 60), dtype=np.float32), expected=3)) == 0


def test_glyph_features_have_a_fixed_length():
    assert glyph_features(np.random.rand(8, 8)).shape == glyph_features(np.random.rand(13, 9)).shape


def test_bad_builtin_option_suggests(tmp_path):
    from conftest import user_error

    raw = image_task("builtin:digit-strips")
    raw["inputs"][0]["column"] = "image"
    raw["data"]["options"] = {"heigth": 16}
    assert "Did you mean `height`?" in user_error(cli("train", write_task(tmp_path, raw)))
