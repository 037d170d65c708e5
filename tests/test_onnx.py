"""ONNX export: every encoder kind and head exported with a free batch axis (and time, for audio), ONNX Runtime's
outputs within 1e-4 of torch's, the same predictions as Run.predict, and `deepstation export`'s mistakes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import deepstation
from conftest import cli, image_task, table_task, user_error
from deepstation.data.prepare import encode_table
from deepstation.data.sources import Table

onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX export needs the serve extra (pip install "
                                  "'deepstation[serve]')")
from deepstation.serve.onnx import OnnxModel, export, greedy, reference, sidecar  # noqa: E402

RATE = 8000


def check(run, rows: pd.DataFrame | str, tmp_path: Path, ids=None) -> pd.DataFrame:
    """Export the run, then on the same rows: the raw outputs of ONNX Runtime and torch within 1e-4, and the
    same predictions from OnnxModel.predict and Run.predict. Returns the ONNX predictions."""
    path = tmp_path / "export" / "model.onnx"
    path.parent.mkdir(exist_ok=True)
    meta = export(run, path)
    assert meta["max_abs_diff"] <= 1e-4 and sidecar(path).is_file()
    audio = any(i["name"].endswith(".wave") for i in meta["inputs"])
    assert meta["exporter"] == ("torchscript" if audio else "dynamo")
    assert all(i["shape"][0] == "batch" or not isinstance(i["shape"][0], int) for i in meta["inputs"])
    model, loaded = OnnxModel(path), deepstation.load(run.dir)
    if isinstance(rows, pd.DataFrame):
        table = Table(rows.reset_index(drop=True), "rows", tmp_path)
        part, _, _ = encode_table(loaded.codecs, loaded.targets, table, False, loaded.task)
        expected, got = reference(loaded, part.features), model.run(part.features)
        assert set(got) == set(expected)
        for name, value in expected.items():
            assert got[name].shape == value.shape, name
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-4, err_msg=name)
    ours = model.predict(rows.copy() if isinstance(rows, pd.DataFrame) else rows, ids=ids)
    theirs = loaded.predict(rows.copy() if isinstance(rows, pd.DataFrame) else rows, ids=ids)
    assert list(ours.columns) == list(theirs.columns)
    for column in ours.columns:
        a, b = ours[column], theirs[column]
        if isinstance(b.iloc[0], np.ndarray):  # an input column of arrays (built-in images), passed through
            assert all(np.array_equal(x, y) for x, y in zip(a, b)), column
        elif b.dtype.kind == "f":  # numbers, probabilities, forecasts and quantiles
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-4, atol=1e-4, err_msg=column)
        else:  # labels, captions, transcripts, ids, steps, dates: the same
            assert a.tolist() == b.tolist(), column
    return ours


def check_batched(run, frames: list, tmp_path: Path) -> None:
    """After check(): a list of frames through one pass, by OnnxModel and by Run, each answer as its frame alone
    gets it from Run.predict (the server's batches of requests)."""
    model, loaded = OnnxModel(tmp_path / "export" / "model.onnx"), deepstation.load(run.dir)
    alone = [loaded.predict(frame.copy()) for frame in frames]
    for predictor in (model, loaded):
        together = predictor.predict([frame.copy() for frame in frames])
        assert len(together) == len(frames)
        for got, expected in zip(together, alone):
            pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-4, atol=1e-4)


def train(task: dict):
    return deepstation.train(task, track=False)


# --- one test per encoder kind ---------------------------------------------------------------------------------


def test_mlp_on_a_table_with_a_number_and_a_category(table_csv, tmp_path):
    task = table_task(table_csv, epochs=1)
    task["outputs"].append({"name": "kind", "type": "category", "column": "kind"})
    run = train(task)
    out = check(run, pd.read_csv(table_csv).head(9), tmp_path)
    assert {"price_pred", "kind_pred", "kind_prob"} <= set(out.columns)
    check_batched(run, [pd.read_csv(table_csv).head(3), pd.read_csv(table_csv).iloc[5:6]], tmp_path)


def test_cnn_on_images(image_folder, tmp_path):
    run = train(image_task(image_folder, epochs=1))
    rows = pd.read_csv(image_folder / "index.csv").head(5)
    rows["path"] = [str(image_folder / p) for p in rows["path"]]
    check(run, rows, tmp_path)
    check(run, str(image_folder / "000.png"), tmp_path)  # a file alone, as `deepstation predict` takes it


def test_crnn_captions_give_per_frame_log_probabilities(tmp_path):
    task = {"name": "strips", "data": {"source": "builtin:digit-strips", "split": {"column": "split"},
                                       "options": {"n": 40, "height": 8, "width": 32, "max_digits": 4}},
            "inputs": [{"name": "image", "type": "image", "column": "image"}],
            "outputs": [{"name": "caption", "type": "sequence", "column": "caption", "unit": "word"}],
            "model": {"encoders": {"image": {"kind": "cnn", "width": 4, "depth": 3}}},
            "trainer": {"epochs": 1, "batch_size": 16, "device": "cpu", "monitor": "loss"}}
    run = train(task)
    from deepstation.data.builtin.strips import load

    rows = load(n=6, height=8, width=32, max_digits=4)
    out = check(run, rows, tmp_path)
    assert out["caption_pred"].map(type).eq(str).all()
    model = OnnxModel(tmp_path / "export" / "model.onnx")
    assert [o["name"] for o in model.meta["outputs"]] == ["caption.log_probs", "caption.lengths"]


@pytest.fixture
def tones(tmp_path) -> Path:
    """16 WAV files of one or two tones ("words") of different lengths, an index.csv of path,text,first."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    freqs = {"low": 300.0, "high": 1500.0}
    folder = tmp_path / "tones"
    folder.mkdir()
    rows = []
    for i in range(16):
        words = list(rng.choice(list(freqs), size=int(rng.integers(1, 3))))
        parts = [np.zeros(int(0.05 * RATE))]
        for w in words:
            t = np.arange(int(rng.uniform(0.1, 0.2) * RATE)) / RATE
            parts += [0.5 * np.sin(2 * np.pi * freqs[w] * t), np.zeros(int(0.05 * RATE))]
        wave = np.concatenate(parts) + rng.normal(0, 0.01, sum(map(len, parts)))
        sf.write(folder / f"{i:02d}.wav", wave.astype(np.float32), RATE)
        rows.append({"path": f"{i:02d}.wav", "text": " ".join(words), "first": words[0]})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def test_audio_ctc_and_a_category_with_a_free_time_axis(tones, tmp_path):
    task = {"name": "tones", "data": {"source": str(tones), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
            "inputs": [{"name": "audio", "type": "audio", "column": "path", "n_mels": 16, "sample_rate": RATE}],
            "outputs": [{"name": "text", "type": "sequence", "column": "text", "unit": "word"},
                        {"name": "first", "type": "category", "column": "first"}],
            "model": {"encoders": {"audio": {"kind": "audio", "width": 8, "depth": 1, "dropout": 0.0}}},
            "trainer": {"epochs": 1, "batch_size": 8, "device": "cpu", "monitor": "loss"}}
    run = train(task)
    rows = pd.read_csv(tones / "index.csv")
    rows["path"] = [str(tones / p) for p in rows["path"]]
    check(run, rows.head(5), tmp_path)
    meta = OnnxModel(tmp_path / "export" / "model.onnx").meta
    wave = next(i for i in meta["inputs"] if i["name"] == "audio.wave")
    assert not isinstance(wave["shape"][1], int)  # any length of audio
    check(run, rows.iloc[[3]], tmp_path)  # one row, another length


@pytest.fixture
def shapes_csv(tmp_path) -> Path:
    """Series of 24 steps spread over columns t0..t23: a rising, a falling or a wavy shape, with noise."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 24)
    shapes = {"up": t, "down": 1 - t, "wave": 0.5 + 0.5 * np.sin(6 * t)}
    labels = rng.choice(list(shapes), size=60)
    values = np.stack([shapes[k] + rng.normal(0, 0.1, 24) for k in labels])
    frame = pd.DataFrame(values, columns=[f"t{i}" for i in range(24)]).assign(label=labels)
    path = tmp_path / "shapes.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["cnn1d", "gru", "transformer"])
def test_series_classification_encoders(kind, shapes_csv, tmp_path):
    task = {"name": "shapes", "data": {"source": str(shapes_csv), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
            "inputs": [{"name": "series", "type": "series", "columns": [f"t{i}" for i in range(24)]}],
            "outputs": [{"name": "shape", "type": "category", "column": "label"}],
            "model": {"encoders": {"series": {"kind": kind, "width": 8, "depth": 1, "dropout": 0.0}}},
            "trainer": {"epochs": 1, "batch_size": 16, "device": "cpu"}}
    run = train(task)
    check(run, pd.read_csv(shapes_csv).head(6), tmp_path)


def panel(n_series=3, length=40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for i in range(n_series):
        t = np.arange(1, length + 1 + i)
        value = 10.0 ** i * (5 + 0.05 * t + np.sin(2 * np.pi * t / 6) + 0.1 * rng.standard_normal(len(t)))
        parts.append(pd.DataFrame({"store": f"s{i}", "t": t, "sales": value}))
    return pd.concat(parts, ignore_index=True)


def panel_task(source, model: dict, embed_id: int = 0) -> dict:
    return {"name": "stores", "data": {"source": str(source)},
            "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "id": "store", "order": "t",
                        "window": 8, "season": 6, "embed_id": embed_id}],
            "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": 4, "loss": "smape",
                         "quantiles": [0.1, 0.5, 0.9]}],
            "model": model, "trainer": {"epochs": 1, "batch_size": 32, "device": "cpu", "monitor": "smape"}}


@pytest.fixture
def panel_csv(tmp_path) -> Path:
    path = tmp_path / "stores.csv"
    panel().to_csv(path, index=False)
    return path


def test_nbeats_forecasts_with_quantiles_in_long_format(panel_csv, tmp_path):
    run = train(panel_task(panel_csv, {"encoders": {"history": {"kind": "nbeats", "blocks": 2, "layers": 2,
                                                                 "width": 8}}}))
    out = check(run, str(panel_csv), tmp_path)
    assert list(out.columns) == ["id", "step", "forecast", "q0.1", "q0.5", "q0.9"] and len(out) == 3 * 4
    assert len(check(run, str(panel_csv), tmp_path, ids=["s1"])) == 4
    stores = pd.read_csv(panel_csv)
    check_batched(run, [stores, stores[stores["store"] == "s2"].assign(sales=lambda f: f["sales"] * 1.5)], tmp_path)


def test_an_ensemble_with_an_id_embedding_and_a_seasonal_base(panel_csv, tmp_path):
    model = {"encoders": {"history": {"kind": "mlp", "width": 8, "depth": 1}}, "base": "seasonal_naive",
             "ensemble": {"members": 2, "lookbacks": [6, 8]}}
    run = train(panel_task(panel_csv, model, embed_id=2))
    check(run, str(panel_csv), tmp_path)


def test_a_dated_forecast_with_calendar_features(tmp_path):
    t = np.arange(60)
    frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=60, freq="MS"),
                          "sales": 100 * 1.01 ** t * (1 + 0.2 * np.sin(2 * np.pi * t / 12))})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    task = {"name": "sales", "data": {"source": str(tmp_path / "sales.csv"), "split": {"valid": 0.1}},
            "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "date": "date", "window": 12,
                        "transform": "log", "calendar": True}],
            "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": 3}],
            "model": {"encoders": {"history": {"kind": "mlp", "width": 8, "depth": 1}}},
            "trainer": {"epochs": 1, "batch_size": 8, "device": "cpu"}}
    run = train(task)
    out = check(run, str(tmp_path / "sales.csv"), tmp_path)
    assert list(out.columns) == ["step", "date", "forecast"]
    check_batched(run, [frame, frame.iloc[:41], frame.iloc[:50].assign(sales=lambda f: f["sales"] * 3)], tmp_path)


# --- decoding ----------------------------------------------------------------------------------------------------


def test_greedy_decoding_matches_the_sequence_head():
    import torch

    from deepstation.models.heads import SequenceHead

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 12, 4)).astype(np.float32)
    logits[:, ::3, 0] += 3  # blanks between repeats
    lengths = np.array([12, 7, 1, 0, 5])
    head = SequenceHead.__new__(SequenceHead)
    expected = head.predict((torch.from_numpy(logits), torch.from_numpy(lengths)))["tokens"]
    assert greedy(logits, lengths) == expected


# --- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def table_run(table_csv):
    return train(table_task(table_csv, epochs=1))


def test_export_cli_writes_the_model_and_its_preprocessing(table_run, tmp_path):
    out = cli("export", table_run.dir, "-o", tmp_path / "deep" / "er" / "m.onnx", check=0).stdout.strip()
    assert len(out.splitlines()) == 1 and "features.num" in out and "price.value" in out and "max abs diff" in out
    assert (tmp_path / "deep" / "er" / "m.onnx").is_file() and (tmp_path / "deep" / "er" / "m.json").is_file()
    cli("export", table_run.dir, check=0)
    assert (table_run.dir / "model.onnx").is_file() and (table_run.dir / "model.json").is_file()
    assert "example:" in cli("export", "--help", check=0).stdout


def test_export_cli_mistakes_are_one_line(table_run, tmp_path, monkeypatch):
    assert "expected a file name ending .onnx" in user_error(cli("export", table_run.dir, "-o", tmp_path / "m.pt"))
    assert "no such run folder" in user_error(cli("export", tmp_path / "nowhere", "-o", tmp_path / "m.onnx"))
    (tmp_path / "plain").mkdir()
    assert "not a deepstation run folder" in user_error(cli("export", tmp_path / "plain"))
    (tmp_path / "file").write_text("")
    assert "is a file" in user_error(cli("export", table_run.dir, "-o", tmp_path / "file" / "m.onnx"))
    (tmp_path / "folder.onnx").mkdir()
    assert "is a folder" in user_error(cli("export", table_run.dir, "-o", tmp_path / "folder.onnx"))

    import torch

    def refuse(*args, **kwargs):
        raise RuntimeError("no ONNX op for this\nsecond line")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    line = user_error(cli("export", table_run.dir, "-o", tmp_path / "m.onnx"))
    assert "encoders: mlp" in line and "could not be exported to ONNX" in line
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_model_needs_its_json(table_run, tmp_path):
    from deepstation.errors import DeepstationError

    path = tmp_path / "m.onnx"
    export(table_run, path)
    sidecar(path).unlink()
    with pytest.raises(DeepstationError, match="m.json: missing"):
        OnnxModel(path)
    with pytest.raises(DeepstationError, match="no such ONNX file"):
        OnnxModel(tmp_path / "other.onnx")


def test_export_a_registered_model_by_its_uri(table_csv, tmp_path):
    run = deepstation.train(table_task(table_csv, epochs=1) | {"name": "onnx-registered"})
    cli("register", run.id, "onnx-price", check=0)
    line = cli("export", "models:/onnx-price/1", check=0).stdout
    assert line.startswith("onnx-price-1.onnx (") and (tmp_path / "onnx-price-1.json").is_file()
    rows = pd.read_csv(table_csv).head(4)
    ours = OnnxModel(tmp_path / "onnx-price-1.onnx").predict(rows.copy())
    np.testing.assert_allclose(ours["price_pred"], run.predict(rows.copy())["price_pred"], rtol=1e-4, atol=1e-4)
