"""Spoken words, synthesised with espeak-ng: 1 to 4 words per utterance from a small vocabulary (the digits by
default), each in one of many voices, at a random speed and pitch, resampled to 16 kHz mono WAV.

A voice is an English accent (en-us, en-gb-scotland, ...) with a speaker variant (m1, f3, klatt2, ...). The
variants are divided between the splits (the `split` column): a test utterance is always spoken by a
speaker the model never heard in training, so the score measures reading new voices, not recalling them.

The WAV files are made once and cached in `$DEEPSTATION_DATA_DIR/speech/<hash of the options>/` (default
`~/.cache/deepstation`); the folder is filled under a temporary name and renamed into place, so a cache folder
that exists is complete. Everything follows from the options: the same options give the same rows and audio.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc"]
# Speaker variants (espeak-ng --voices=variant); each belongs to one split only.
VARIANTS = {
    "train": ["m1", "m2", "m4", "m5", "m7", "m8", "f1", "f3", "f5", "klatt", "klatt2", "norbert", "shelby",
              "victor", "linda", "john", "paul", "max", "robert", "zac", "grandpa", "grandma"],
    "valid": ["m6", "f4", "steph", "klatt4"],
    "test": ["m3", "f2", "klatt3", "travis", "annie"],
}
SPEED = (120, 210)   # words per minute (espeak-ng -s; its default is 175)
PITCH = (20, 80)     # 0..99 (espeak-ng -p; default 50)
GAP = (0, 4)         # extra pause between words, in 10 ms units (espeak-ng -g)
SAMPLE_RATE = 16000
DATA_VERSION = 1     # bump when the synthesis changes, so old caches are not reused
INSTALL = "apt-get install espeak-ng"


def load(n: int = 1200, min_words: int = 1, max_words: int = 4, vocabulary=None, seed: int = 0,
         noise: float = 0.0) -> pd.DataFrame:
    """Rows of path (absolute WAV path), text, voice, split. `vocabulary`: a list of words (or one string of
    space-separated words); `noise`: white noise added, as a fraction of each utterance's RMS level."""
    words = _vocabulary(vocabulary)
    if n < 1 or not (1 <= min_words <= max_words) or noise < 0:
        raise DeepstationError(f"data.options: builtin:speech needs n >= 1, 1 <= min_words <= max_words and "
                               f"noise >= 0; got n={n}, min_words={min_words}, max_words={max_words}, noise={noise}")
    binary = espeak_binary()
    options = {"n": n, "min_words": min_words, "max_words": max_words, "vocabulary": words, "seed": seed,
               "noise": noise, "version": DATA_VERSION, "espeak": _espeak_version(binary)}
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    folder = data_dir() / "speech" / key
    if not (folder / "index.csv").is_file():
        _build(folder, _plan(n, min_words, max_words, words, seed), noise, seed, binary)
    frame = pd.read_csv(folder / "index.csv", keep_default_na=False)
    frame["path"] = [str(folder / p) for p in frame["path"]]
    return frame


def data_dir() -> Path:
    root = os.environ.get("DEEPSTATION_DATA_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "deepstation"


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise DeepstationError(f"builtin:speech synthesises its audio with espeak-ng, which is not installed; "
                               f"install it with `{INSTALL}` (as root) and run again")
    return binary


def voices(split: str | None = None) -> list[str]:
    """Every voice (accent+variant) of a split, or of all splits."""
    chosen = VARIANTS[split] if split else [v for vs in VARIANTS.values() for v in vs]
    return [f"{accent}+{variant}" for variant in chosen for accent in ACCENTS]


def _vocabulary(vocabulary) -> list[str]:
    if vocabulary is None:
        return list(DIGITS)
    words = vocabulary.split() if isinstance(vocabulary, str) else [str(w).strip() for w in vocabulary]
    if not words or any(not w or " " in w for w in words):
        raise DeepstationError(f"data.options.vocabulary: expected a list of single words, got {vocabulary!r}")
    return words


def _plan(n: int, min_words: int, max_words: int, words: list[str], seed: int) -> pd.DataFrame:
    """What to say, in which voice, how fast and how high: all drawn from `seed`."""
    rng = np.random.default_rng(seed)
    every = voices()
    split_of = {v: s for s, vs in VARIANTS.items() for v in vs}
    rows = []
    for i in range(n):
        k = int(rng.integers(min_words, max_words + 1))
        text = " ".join(words[j] for j in rng.integers(0, len(words), size=k))
        voice = every[int(rng.integers(len(every)))]
        rows.append({"path": f"{i:05d}.wav", "text": text, "voice": voice, "split": split_of[voice.split("+")[1]],
                     "speed": int(rng.integers(SPEED[0], SPEED[1] + 1)),
                     "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
                     "gap": int(rng.integers(GAP[0], GAP[1] + 1))})
    return pd.DataFrame(rows)


def _build(folder: Path, plan: pd.DataFrame, noise: float, seed: int, binary: str) -> None:
    """Synthesise every row into a temporary folder, then rename it into place."""
    from concurrent.futures import ThreadPoolExecutor

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        jobs = [(tmp / row.path, row.text, row.voice, row.speed, row.pitch, row.gap, noise, seed * 1_000_003 + i)
                for i, row in enumerate(plan.itertuples())]
        # espeak-ng runs as a child process: threads overlap them, and resampling releases the GIL
        with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
            list(pool.map(lambda job: _synthesise(binary, *job), jobs))
        plan.to_csv(tmp / "index.csv", index=False)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "index.csv").is_file():  # not another process finishing the same set first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _synthesise(binary: str, path: Path, text: str, voice: str, speed: int, pitch: int, gap: int, noise: float,
                seed: int) -> None:
    import io

    import soundfile as sf
    from scipy.signal import resample_poly

    done = subprocess.run([binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap), "--stdout",
                           text], capture_output=True, timeout=60)
    if done.returncode != 0 or len(done.stdout) <= 44:
        reason = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise DeepstationError(f"builtin:speech: espeak-ng could not say {text!r} in voice {voice} ({reason})")
    wave, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, rate // g).astype(np.float32)
    if noise:
        rms = float(np.sqrt(np.mean(wave ** 2))) or 1.0
        wave = wave + np.random.default_rng(seed).normal(0, noise * rms, wave.shape).astype(np.float32)
    wave = wave / max(float(np.abs(wave).max()), 1e-6) * 0.9  # every file at the same peak level
    sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")


def _espeak_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.split("Data at")[0].strip()
