"""Images of varying size (resize: pad | crop | stretch) and the caption baseline's words per glyph."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

import deepstation
from conftest import cli, image_task, write_task
from deepstation.config import ImageInput
from deepstation.data.image import ImageCodec
from deepstation.data.sources import Table


def _read(codec: ImageCodec, images: list) -> np.ndarray:
    raw, bad = codec.read(Table(pd.DataFrame({"image": images}), "test rows", Path(".")))
    assert not bad.any()
    return raw


def _codec(resize: str, size=(4, 4), channels=None) -> ImageCodec:
    return ImageCodec(ImageInput(name="photo", type="image", column="image", size=size, resize=resize,
                                 channels=channels))


# a 4x8 image (height x width): left half 1.0, right half 0.5
WIDE = np.concatenate([np.ones((4, 4)), np.full((4, 4), 0.5)], axis=1).astype(np.float32)


def test_pad_keeps_the_aspect_ratio_and_centres_on_black():
    raw = _read(_codec("pad", size=(8, 8)), [WIDE])
    assert raw.shape == (1, 1, 8, 8)
    assert (raw[0, 0, :2] == 0).all() and (raw[0, 0, 6:] == 0).all()  # 4 rows of image, 2 black above and below
    assert np.allclose(raw[0, 0, 2:6, :4], 1.0) and np.allclose(raw[0, 0, 2:6, 4:], 0.5)


def test_crop_keeps_the_aspect_ratio_and_cuts_the_centre():
    raw = _read(_codec("crop"), [WIDE])
    assert np.allclose(raw[0, 0, :, :2], 1.0) and np.allclose(raw[0, 0, :, 2:], 0.5)  # columns 2..5 of 0..7


def test_stretch_squeezes_the_width():
    raw = _read(_codec("stretch"), [WIDE])
    assert raw.shape == (1, 1, 4, 4) and np.allclose(raw[0, 0, :, 0], 1.0) and np.allclose(raw[0, 0, :, 3], 0.5)


def test_the_codec_counts_what_it_resized_and_says_so():
    codec = ImageCodec(ImageInput(name="photo", type="image", column="image"))  # target: the first image's size
    raw = _read(codec, [np.ones((4, 4), np.float32), WIDE, np.ones((4, 4), np.float32), np.ones((2, 2), np.float32)])
    codec.fit(raw)
    assert raw.shape == (4, 1, 4, 4) and codec.state["resize"] == "pad"
    assert codec.state["resized"] == {"count": 2, "of": 4, "how": "pad", "sizes": 3, "other_aspect": 1}
    json.dumps(codec.state)  # goes into preprocess.json
    assert codec.notes() == ["inputs.photo: 2 of 4 images were not 4x4 (height x width); scaled to fit and padded "
                             "with black, keeping their aspect ratio (set inputs.photo.size or resize: stretch | pad | "
                             "crop to choose)"]


def test_images_of_one_size_scaled_alike_need_no_note():
    codec = _codec("pad", size=(8, 8))
    codec.fit(_read(codec, [np.ones((4, 4), np.float32)] * 3))
    assert codec.state["resized"]["count"] == 3 and codec.notes() == []
    same = _codec("pad")
    same.fit(_read(same, [np.ones((4, 4), np.float32)] * 3))
    assert "resized" not in same.state and same.notes() == []


def test_a_fitted_codec_resizes_as_it_was_trained():
    trained = _codec("crop")
    trained.fit(_read(trained, [np.ones((4, 4), np.float32)]))
    loaded = ImageCodec(_codec("stretch").spec, json.loads(json.dumps(trained.state)))  # the state wins over the spec
    assert loaded.resize == "crop" and np.allclose(_read(loaded, [WIDE])[0, 0, :, :2], 1.0)
    old = {k: v for k, v in trained.state.items() if k != "resize"}  # a run from before `resize`: it stretched
    assert ImageCodec(_codec("pad").spec, old).resize == "stretch"


def test_rgb_files_and_arrays_alike():
    codec = _codec("pad", size=(4, 4), channels=3)
    rgb = np.zeros((2, 4, 3), np.float32)
    rgb[..., 0] = 1.0  # red, 2 high and 4 wide
    raw = _read(codec, [rgb])
    assert raw.shape == (1, 3, 4, 4) and np.allclose(raw[0, 0, 1:3], 1.0) and (raw[0, 0, 0] == 0).all()
    assert (raw[0, 1:] == 0).all()


@pytest.fixture
def mixed_folder(image_folder) -> Path:
    """The digits folder with a third of its images widened onto a black canvas (8 high, 12 wide)."""
    for i in range(0, 120, 3):
        path = image_folder / f"{i:03d}.png"
        with Image.open(path) as im:
            canvas = Image.new("L", (12, 8))
            canvas.paste(im, (2, 0))
        canvas.save(path)
    return image_folder


def test_a_run_on_images_of_mixed_sizes_says_what_was_done(mixed_folder, tmp_path):
    raw = image_task(mixed_folder, epochs=1)
    del raw["inputs"][0]["size"]  # the first image's (000.png: widened to 8x12)
    run = deepstation.train(raw, track=False)
    state = json.loads((run.dir / "preprocess.json").read_text())["inputs"]["image"]
    assert state["size"] == [8, 12] and state["resize"] == "pad"
    assert state["resized"] == {"count": 80, "of": 120, "how": "pad", "sizes": 2, "other_aspect": 80}
    notes = json.loads((run.dir / "summary.json").read_text())["data"]["notes"]
    assert any(w.startswith("inputs.image: 80 of 120 images were not 8x12 (height x width); scaled to fit and "
                            "padded") for w in notes), notes

    # predict pads as training did: an 8x8 image gives what the same image padded by hand gives
    square, padded = tmp_path / "square.png", tmp_path / "padded.png"
    with Image.open(mixed_folder / "001.png") as im:
        im.save(square)
        canvas = Image.new("L", (12, 8))
        canvas.paste(im, (2, 0))
        canvas.save(padded)
    loaded = deepstation.load(run.dir)
    a, b = loaded.predict(str(square)), loaded.predict(str(padded))
    assert a["digit_pred"].tolist() == b["digit_pred"].tolist()
    np.testing.assert_allclose(a["digit_prob"], b["digit_prob"], rtol=1e-5)
    assert cli("predict", run.dir, square, check=0).stdout.splitlines()[1].startswith("square.png,")

    pytest.importorskip("onnxruntime", reason="ONNX export needs the serve extra (pip install 'deepstation[serve]')")
    from deepstation.serve.onnx import OnnxModel, export

    export(run, tmp_path / "model.onnx")  # serving decodes through the codec rebuilt from the exported state
    onnx = OnnxModel(tmp_path / "model.onnx")
    assert onnx.codecs["image"].resize == "pad"
    np.testing.assert_allclose(onnx.predict(str(square))["digit_prob"], a["digit_prob"], rtol=1e-4, atol=1e-4)


# --- the caption baseline: how many words each glyph carries --------------------------------------------------

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
SHAPES = ["circle", "square", "triangle"]


def _shape(draw, shape: str, x: int, size: int, colour) -> None:
    box = (x, 2, x + size - 1, 2 + size - 1)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, 2 + size - 1), (x + size - 1, 2 + size - 1), (x + (size - 1) / 2, 2)], fill=colour)


def _caption_folder(tmp_path, words_for) -> Path:
    """Strips of 2 or 3 coloured shapes on black, 16 high; `words_for(colour, shape, rng)` captions each one."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "shapes"
    folder.mkdir()
    rows = []
    for i in range(90):
        im = Image.new("RGB", (48, 16))
        draw = ImageDraw.Draw(im)
        words, x = [], int(rng.integers(0, 3))
        for _ in range(int(rng.integers(2, 4))):
            colour, shape, size = rng.choice(list(COLOURS)), rng.choice(SHAPES), int(rng.integers(10, 13))
            _shape(draw, shape, x, size, COLOURS[colour])
            words += words_for(colour, shape, rng)
            x += size + int(rng.integers(2, 4))
        im.save(folder / f"{i:03d}.png")
        rows.append({"path": f"{i:03d}.png", "caption": " ".join(words)})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def _baseline(folder, tmp_path) -> dict:
    from deepstation.baselines.run import run_baseline
    from deepstation.config import load_task
    from deepstation.data.prepare import prepare
    from deepstation.data.sources import read_task_source

    raw = {"name": "shapes", "data": {"source": str(folder), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
           "inputs": [{"name": "image", "type": "image", "column": "path"}],
           "outputs": [{"name": "caption", "type": "sequence", "column": "caption", "unit": "word"}],
           "model": {"encoders": {"image": {"kind": "cnn", "width": 4, "depth": 2}}},
           "trainer": {"epochs": 1, "device": "cpu"}}
    task = load_task(write_task(tmp_path, raw))
    return run_baseline(task, prepare(task, read_task_source(task)))


def test_the_caption_baseline_reads_two_words_per_glyph(tmp_path):
    out = _baseline(_caption_folder(tmp_path, lambda colour, shape, rng: [colour, shape]), tmp_path)
    assert out["name"] == "SegmentAndClassify" and "skipped" not in out
    assert out["metrics"]["test"]["exact_match"] > 0.8 and out["metrics"]["test"]["wer"] < 0.1
    assert all(len(p.split()) % 2 == 0 for p in out["predictions"])


def test_the_caption_baseline_is_skipped_when_words_and_glyphs_do_not_line_up(tmp_path):
    # one to three words per shape, at random: no whole number of words per glyph holds across the rows
    folder = _caption_folder(tmp_path, lambda colour, shape, rng: [colour, shape, "big"][:int(rng.integers(1, 4))])
    out = _baseline(folder, tmp_path)
    assert set(out) == {"name", "description", "skipped"} and out["name"] == "SegmentAndClassify"
    assert "do not line up" in out["skipped"] and "\n" not in out["skipped"]
