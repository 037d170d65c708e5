"""Audio inputs: files decoded with soundfile, mixed down to mono, resampled to the task's `sample_rate`.

The codec keeps waveforms as they are (padded with zeros into one [N, samples] array, plus each one's true
length); the log-mel spectrogram is computed by the model (deepstation.models.encoders.audio), on the GPU when
there is one. fit() learns one number on the training rows: the RMS level of speech, by which every waveform
is divided, so that the model sees inputs of unit scale whatever the recording level of the data set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deepstation.data.sources import decode_rows, resolve_file
from deepstation.errors import DeepstationError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".opus"}


class AudioCodec:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state
        self.sample_rate = state["sample_rate"] if state else spec.sample_rate

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"inputs.{self.spec.name}.column"}

    def read(self, table, on_bad_sample="error"):
        """Decode every row: ({"wave": [N, S] float32, "samples": [N] int64}, mask of rows that failed)."""
        # soundfile's LibsndfileError is a RuntimeError
        waves, bad = decode_rows(table, self.spec.column, self._decode, "audio", (OSError, ValueError, RuntimeError),
                                 _reason, on_bad_sample)
        waves = [np.zeros(0, dtype=np.float32) if w is None else w for w in waves]
        samples = np.asarray([len(w) for w in waves], dtype=np.int64)
        wave = np.zeros((len(waves), max(int(samples.max(initial=0)), 1)), dtype=np.float32)
        for i, w in enumerate(waves):
            wave[i, :len(w)] = w
        return {"wave": wave, "samples": samples}, bad

    def _decode(self, value, base_dir: Path) -> np.ndarray:
        import soundfile as sf

        if isinstance(value, bytes):  # a file's bytes (a request to `deepstation serve`)
            import io

            source = io.BytesIO(value)
        else:
            path = resolve_file(value, base_dir, "an audio file")
            if not path.is_file():
                raise FileNotFoundError(path)
            source = str(path)
        wave, rate = sf.read(source, dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        if len(wave) == 0:
            raise ValueError("the file holds no samples")
        if not np.isfinite(wave).all():
            raise ValueError("the samples are not finite numbers")
        return resample(wave, rate, self.sample_rate)

    def fit(self, raw) -> None:
        """The RMS level over the training rows' true samples (not their padding)."""
        wave, samples = raw["wave"], raw["samples"]
        inside = np.arange(wave.shape[1])[None, :] < samples[:, None]
        power = float((wave.astype(np.float64) ** 2)[inside].mean()) if inside.any() else 0.0
        self.state = {"sample_rate": self.sample_rate, "n_mels": self.spec.n_mels, "augment": self.spec.augment,
                      "rms": float(np.sqrt(power)) if power > 0 else 1.0}

    def encode(self, raw) -> dict:
        import torch

        wave = np.ascontiguousarray(raw["wave"] / np.float32(self.state["rms"]), dtype=np.float32)
        return {"wave": torch.from_numpy(wave), "samples": torch.from_numpy(raw["samples"].astype(np.int64))}

    def shape(self) -> dict:
        return {"type": "audio", "sample_rate": self.state["sample_rate"], "n_mels": self.state["n_mels"],
                "augment": self.state["augment"]}


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (an anti-aliasing filter included) from `rate` to `target` samples per second."""
    if rate == target:
        return wave.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = np.gcd(int(rate), int(target))
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None):
    """[n_fft // 2 + 1, n_mels] triangular filters, evenly spaced on the HTK mel scale, each peaking at 1. Used by
    the model's log-mel frontend and the MFCC baseline alike."""
    fmax = fmax or sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / np.maximum(centre - lower, 1e-9)
    falling = (upper - bins[None, :]) / np.maximum(upper - centre, 1e-9)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _reason(err: Exception) -> str:
    if isinstance(err, FileNotFoundError):
        return "file not found"
    text = " ".join(str(err).split()) or type(err).__name__
    if "Error opening" in text and ":" in text:  # soundfile: "Error opening 'x.wav': Format not recognised."
        text = text.rsplit(":", 1)[1].strip().rstrip(".")
    return text[0].lower() + text[1:] if text else type(err).__name__
