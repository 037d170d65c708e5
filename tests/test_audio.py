"""Audio in, transcripts out: the codec, the log-mel frontend, the encoder's padding, errors a person sees,
builtin:speech, a tiny end-to-end run and the classical baselines."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import deepstation
from conftest import cli, user_error, write_task
from deepstation.config import load_task
from deepstation.data.audio import AudioCodec, mel_filterbank
from deepstation.data.sources import Table
from deepstation.errors import DeepstationError

RATE = 16000
TONES = {"low": 300.0, "mid": 1100.0, "high": 3000.0}  # made-up "words": a tone each
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="builtin:speech needs espeak-ng (apt-get install espeak-ng)")


def tone(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t))).astype(np.float32)


def say(words: list[str], rng) -> np.ndarray:
    """Tones for words, with silences between them and a little noise."""
    gap = np.zeros(int(0.12 * RATE), dtype=np.float32)
    parts = [gap]
    for w in words:
        parts += [tone(TONES[w] * rng.uniform(0.95, 1.05), rng.uniform(0.15, 0.25)), gap]
    wave = np.concatenate(parts)
    return wave + rng.normal(0, 0.003, len(wave)).astype(np.float32)


@pytest.fixture
def tone_folder(tmp_path) -> Path:
    """60 WAV files of 1 to 3 tone-words each, with an index.csv of path,text."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    folder = tmp_path / "tones"
    folder.mkdir()
    rows = []
    for i in range(60):
        words = list(rng.choice(list(TONES), size=int(rng.integers(1, 4))))
        sf.write(folder / f"{i:02d}.wav", say(words, rng), RATE)
        rows.append({"path": f"{i:02d}.wav", "text": " ".join(words), "kind": words[0]})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def audio_task(source, output=None, **trainer) -> dict:
    return {
        "name": "tiny-audio",
        "data": {"source": str(source), "split": {"valid": 0.2, "test": 0.2, "seed": 0}},
        "inputs": [{"name": "audio", "type": "audio", "column": "path", "n_mels": 16}],
        "outputs": [output or {"name": "text", "type": "sequence", "column": "text", "unit": "word"}],
        "model": {"encoders": {"audio": {"kind": "audio", "width": 16, "depth": 1, "dropout": 0.0}}},
        "trainer": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "seed": 0, "device": "cpu", **trainer},
    }


def codec_for(**spec) -> AudioCodec:
    task = load_task(audio_task("data.csv") | {"inputs": [{"name": "audio", "type": "audio", "column": "path",
                                                           **spec}]})
    return AudioCodec(task.inputs[0])


# --- the codec --------------------------------------------------------------------------------


def test_the_codec_reads_wav_and_flac_and_resamples(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "a.wav", tone(440, 1.0, 8000), 8000)                        # 8 kHz mono WAV
    sf.write(tmp_path / "b.flac", np.stack([tone(440, 0.5, 22050)] * 2, axis=1), 22050)  # 22.05 kHz stereo FLAC
    codec = codec_for()
    raw, bad = codec.read(Table(pd.DataFrame({"path": ["a.wav", "b.flac"]}), "index.csv", tmp_path))
    assert not bad.any()
    assert raw["samples"].tolist() == [16000, 8000]
    assert raw["wave"].shape == (2, 16000) and raw["wave"].dtype == np.float32
    assert not raw["wave"][1, 8000:].any()  # padding is zeros
    for wave, n in zip(raw["wave"], raw["samples"]):
        spectrum = np.abs(np.fft.rfft(wave[:n]))
        assert abs(np.argmax(spectrum) * RATE / n - 440) < 3  # the tone kept its pitch
    codec.fit(raw)
    encoded = codec.encode(raw)
    assert encoded["wave"].dtype == torch.float32 and encoded["samples"].tolist() == [16000, 8000]
    assert codec.state["rms"] > 0 and codec.shape()["sample_rate"] == RATE


def test_an_undecodable_file_is_skipped_when_asked(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "good.wav", tone(440, 0.2), RATE)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    table = Table(pd.DataFrame({"path": ["good.wav", "bad.wav", "gone.wav"]}), "index.csv", tmp_path)
    raw, bad = codec_for().read(table, "skip")
    assert bad.tolist() == [False, True, True]
    with pytest.raises(DeepstationError, match=r"bad\.wav: cannot decode audio .*row 2 of index\.csv.*on_bad_sample"):
        codec_for().read(table, "error")


# --- the model's frontend and encoder ------------------------------------------------------------


def test_log_mel_matches_a_numpy_reference_for_a_sine_tone():
    from deepstation.models.encoders.audio import LogMel

    n_mels, freq = 40, 1000.0
    wave = tone(freq, 0.5) / np.hanning(8000).clip(0.2)  # nearly steady
    frontend = LogMel(RATE, n_mels)
    got, frames = frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    assert got.shape == (1, len(wave) // 160 + 1, n_mels) and frames.tolist() == [got.shape[1]]

    # numpy: zero-padded centred frames, a Hann window (periodic, as torch's), |rfft|^2, mel filters, log
    n_fft, hop, win = 512, 160, 400
    window = np.pad(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win), ((n_fft - win) // 2,) * 2)
    padded = np.pad(wave.astype(np.float64), n_fft // 2)
    starts = range(0, len(padded) - n_fft + 1, hop)
    power = np.abs(np.fft.rfft(np.stack([padded[s:s + n_fft] for s in starts]) * window, axis=1)) ** 2
    expected = np.log(np.maximum(power @ mel_filterbank(RATE, n_fft, n_mels), 1e-6))
    np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-3, atol=1e-2)

    centres = np.argmax(mel_filterbank(RATE, n_fft, n_mels), axis=0) * RATE / n_fft
    middle = got[0, got.shape[1] // 2]
    assert int(middle.argmax()) == int(np.argmin(np.abs(centres - freq)))  # the peak in the tone's band


def _encoder(temporal=True, augment=False):
    from deepstation.config import AudioEncoder
    from deepstation.models.encoders import build_encoder

    torch.manual_seed(0)
    config = AudioEncoder(kind="audio", width=8, depth=2, dropout=0.0)
    shape = {"type": "audio", "sample_rate": RATE, "n_mels": 16, "augment": augment}
    return build_encoder(config, shape, temporal=temporal)


def test_padding_changes_nothing_and_lengths_are_true():
    encoder = _encoder().eval()
    rng = np.random.default_rng(0)
    short, long = say(["low", "high"], rng), say(["mid", "low", "high"], rng)
    alone, n_alone = encoder({"wave": torch.from_numpy(short)[None], "samples": torch.tensor([len(short)])})
    batch = torch.zeros(2, len(long))
    batch[0, :len(short)], batch[1] = torch.from_numpy(short), torch.from_numpy(long)
    padded, n_padded = encoder({"wave": batch, "samples": torch.tensor([len(short), len(long)])})
    frames = np.array([len(short), len(long)]) // 160 + 1
    assert n_padded.tolist() == [int(-(-(-(-f // 2)) // 2)) for f in frames]  # ceil(ceil(f / 2) / 2)
    assert n_alone.tolist() == n_padded[:1].tolist()
    torch.testing.assert_close(padded[0, :n_alone[0]], alone[0, :n_alone[0]], rtol=1e-4, atol=1e-5)
    assert not padded[0, n_alone[0]:].any()  # the GRU read packed sequences: nothing past the end


def test_masks_apply_only_in_training_with_augment_on():
    wave = torch.from_numpy(say(["low", "mid", "high"], np.random.default_rng(1)))[None]
    x = {"wave": wave, "samples": torch.tensor([wave.shape[1]])}
    on = _encoder(augment=True)
    torch.manual_seed(1)
    a, _ = on.train()(x)
    torch.manual_seed(2)
    b, _ = on(x)
    assert not torch.allclose(a, b)           # random masks while training
    c, _ = on.eval()(x)
    d, _ = on(x)
    torch.testing.assert_close(c, d)          # none in evaluation
    off = _encoder(augment=False).train()
    torch.testing.assert_close(off(x)[0], off(x)[0])


def test_a_pooled_vector_for_category_outputs():
    encoder = _encoder(temporal=False).eval()
    wave = torch.from_numpy(say(["low"], np.random.default_rng(0)))[None]
    out = encoder({"wave": wave.repeat(3, 1), "samples": torch.tensor([wave.shape[1]] * 3)})
    assert out.shape == (3, encoder.out_dim)


# --- errors a person sees ------------------------------------------------------------------------


def test_an_undecodable_file_is_one_line_naming_it(tone_folder, tmp_path):
    (tone_folder / "07.wav").write_bytes(b"RIFF....WAVEjunk")
    line = user_error(cli("train", write_task(tmp_path, audio_task(tone_folder))))
    assert "07.wav: cannot decode audio" in line and "row 8 of" in line and "data.on_bad_sample: skip" in line


def test_an_empty_transcript_names_its_row(tone_folder, tmp_path):
    index = pd.read_csv(tone_folder / "index.csv")
    index.loc[4, "text"] = "  "
    index.to_csv(tone_folder / "index.csv", index=False)
    line = user_error(cli("train", write_task(tmp_path, audio_task(tone_folder))))
    assert "row 5, column `text`" in line and "the text is empty" in line


def test_builtin_speech_without_espeak_says_how_to_install(monkeypatch):
    from deepstation.data.builtin import speech

    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(DeepstationError, match="apt-get install espeak-ng"):
        speech.load(n=2)


# --- builtin:speech --------------------------------------------------------------------------


@needs_espeak
def test_builtin_speech_is_deterministic_cached_and_holds_out_test_voices(tmp_path, monkeypatch):
    import soundfile as sf

    from deepstation.data.builtin import speech

    monkeypatch.setenv("DEEPSTATION_DATA_DIR", str(tmp_path / "data"))
    first = speech.load(n=30, max_words=2, seed=3)
    assert list(first.columns[:4]) == ["path", "text", "voice", "split"]
    assert set(first["split"]) == {"train", "valid", "test"}
    assert all(1 <= len(t.split()) <= 2 and set(t.split()) <= set(speech.DIGITS) for t in first["text"])
    wave, rate = sf.read(first["path"][0])
    assert rate == 16000 and wave.ndim == 1 and len(wave) > 1600
    voices = {s: set(first.loc[first["split"] == s, "voice"]) for s in ("train", "valid", "test")}
    assert not voices["test"] & (voices["train"] | voices["valid"])
    assert {v.split("+")[1] for v in speech.voices("test")}.isdisjoint(v.split("+")[1] for v in speech.voices("train"))

    cached = list((tmp_path / "data" / "speech").iterdir())
    again = speech.load(n=30, max_words=2, seed=3)  # from the cache: same rows, same audio
    pd.testing.assert_frame_equal(first, again)
    assert list((tmp_path / "data" / "speech").iterdir()) == cached and not [p for p in cached if ".tmp" in p.name]
    other = speech.load(n=30, max_words=2, seed=4, vocabulary=["yes", "no"])
    assert set(" ".join(other["text"]).split()) <= {"yes", "no"}
    before = Path(other["path"][5]).read_bytes()
    shutil.rmtree(Path(other["path"][0]).parent)  # made again from nothing: the same bytes
    assert Path(speech.load(n=30, max_words=2, seed=4, vocabulary=["yes", "no"])["path"][5]).read_bytes() == before


@needs_espeak
def test_builtin_speech_options_are_checked(tmp_path, monkeypatch):
    from deepstation.data.builtin import speech

    monkeypatch.setenv("DEEPSTATION_DATA_DIR", str(tmp_path))
    with pytest.raises(DeepstationError, match="min_words <= max_words"):
        speech.load(n=4, min_words=3, max_words=2)


# --- end to end --------------------------------------------------------------------------------


def test_a_tiny_transcription_run_end_to_end(tone_folder):
    run = deepstation.train(audio_task(tone_folder, epochs=2))
    assert set(run.metrics["test"]) == {"loss", "exact_match", "cer", "wer"}
    assert run.summary["data"]["rows"] == {"train": 36, "valid": 12, "test": 12}
    loaded = deepstation.load(run.dir)
    index = pd.read_csv(tone_folder / "index.csv").head(3)
    index["path"] = [str(tone_folder / p) for p in index["path"]]
    predictions = loaded.predict(index)
    assert list(predictions["text_pred"].map(type).unique()) == [str]
    assert loaded.evaluate()["test"] == pytest.approx(run.metrics["test"], rel=1e-4, abs=1e-6)
    wavs = sorted(p for p in tone_folder.iterdir() if p.suffix in (".wav", ".flac"))
    single = cli("predict", run.dir, wavs[0], check=0).stdout.splitlines()
    assert single[0].endswith(",text_pred") and single[1].startswith(wavs[0].name)
    folder = tone_folder.parent / "to-transcribe"
    folder.mkdir()
    for wav in wavs[:2]:
        shutil.copy(wav, folder / wav.name)
    assert len(cli("predict", run.dir, folder, check=0).stdout.splitlines()) == 3


def test_audio_to_a_category(tone_folder):
    run = deepstation.train(audio_task(tone_folder, {"name": "first", "type": "category", "column": "kind"},
                                       epochs=1))
    assert set(run.metrics["test"]) == {"loss", "accuracy", "macro_f1"}


@needs_espeak
def test_builtin_speech_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSTATION_DATA_DIR", str(tmp_path / "data"))
    task = audio_task("builtin:speech", epochs=1)
    task["data"] = {"source": "builtin:speech", "options": {"n": 24, "max_words": 2}, "split": {"column": "split"}}
    run = deepstation.train(task)
    assert sum(run.summary["data"]["rows"].values()) == 24


# --- baselines -------------------------------------------------------------------------------


def _raw(folder: Path, rows=slice(None)):
    index = pd.read_csv(folder / "index.csv")[rows]
    codec = codec_for()
    raw, _ = codec.read(Table(index.reset_index(drop=True), "index.csv", folder))
    return raw, index["text"].to_numpy()


def test_the_mfcc_baseline_fits_and_predicts(tone_folder):
    from deepstation.baselines import baseline_for
    from deepstation.baselines.audio import MfccSegments
    from deepstation.training.metrics import sequence

    task = load_task(audio_task(tone_folder))
    assert baseline_for(task) is MfccSegments
    train, texts = _raw(tone_folder, slice(0, 45))
    model = MfccSegments(task).fit(train, texts)
    assert model.matched > 0.9 and model.size() > 0
    test, truth = _raw(tone_folder, slice(45, None))
    pred = model.predict(test)
    assert len(pred) == 15 and sequence(list(truth), pred)["wer"] < 0.2


def test_pocketsphinx_reference_gives_a_transcript_per_file(tone_folder):
    pytest.importorskip("pocketsphinx", reason="pocketsphinx is an optional extra")
    from deepstation.baselines.audio import pocketsphinx_reference

    paths = [tone_folder / "00.wav", tone_folder / "01.wav"]
    plain = pocketsphinx_reference(paths)
    words = pocketsphinx_reference(paths, vocabulary=["one", "two"])
    assert len(plain) == len(words) == 2 and all(isinstance(t, str) for t in plain + words)
    assert all(set(t.split()) <= {"one", "two"} for t in words)
    with pytest.raises(DeepstationError, match="not in pocketsphinx's dictionary"):
        pocketsphinx_reference(paths, vocabulary=["qwxzzy"])
