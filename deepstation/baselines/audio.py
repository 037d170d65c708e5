"""Speech the classical way: find the words by their energy, describe each by MFCC statistics, classify each
with an SVM, join the words. And, for reference, pocketsphinx's shipped English recogniser.

Energy alone cannot always split words that run together, so fit() chooses the silence threshold, the shortest
pause and the depth of an energy dip between words that best cut the training utterances into as many pieces
as they have words, and trains the classifier only on the utterances cut exactly right.
"""
from __future__ import annotations

import itertools

import numpy as np

from deepstation.data.audio import mel_filterbank, resample
from deepstation.errors import DeepstationError

WINDOW_S, HOP_S = 0.025, 0.010
N_MELS, N_MFCC = 26, 13
# segmentation settings tried by fit() (it keeps the one that cuts most training utterances right):
THRESHOLDS_DB = (10, 15, 20, 25, 30)      # this far below the utterance's loudest frame is silence
MIN_PAUSES_S = (0.03, 0.08, 0.15)         # a quieter stretch shorter than this is inside a word
VALLEYS_DB = (None, 10, 15, 20)           # a dip this deep between two loud stretches separates two words
MIN_WORD_S = 0.06


class MfccSegments:
    description = "energy segmentation into words -> per-word MFCC mean/std/thirds -> SVM (RBF)"

    def __init__(self, task):
        self.sample_rate = task.inputs[0].sample_rate

    def fit(self, raw: dict, texts: np.ndarray) -> "MfccSegments":
        frames = [self._frames(w) for w in _waves(raw)]
        words = [str(t).split() for t in texts]
        # the segmentation settings that cut most training utterances into the right number of words
        scores = {(t, p, v): np.mean([len(segments(energy, t, p, HOP_S, v)) == len(ws)
                                      for (_, energy), ws in zip(frames, words)])
                  for t, p, v in itertools.product(THRESHOLDS_DB, MIN_PAUSES_S, VALLEYS_DB)}
        self.cut = max(scores, key=lambda k: (scores[k], str(k)))
        self.matched = float(scores[self.cut])
        feats, labels = [], []
        for (cep, energy), ws in zip(frames, words):
            parts = self._segments(energy)
            if len(parts) == len(ws):
                feats += [word_features(cep[a:b]) for a, b in parts]
                labels += ws
        if len(set(labels)) < 2:
            raise DeepstationError(f"baseline: energy segmentation matched the word count of only "
                                   f"{self.matched:.0%} of the training utterances, too few to train on")
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        self.model = make_pipeline(StandardScaler(), SVC(C=10, gamma="scale")).fit(np.stack(feats), labels)
        return self

    def predict(self, raw: dict) -> list[str]:
        out = []
        for wave in _waves(raw):
            cep, energy = self._frames(wave)
            feats = [word_features(cep[a:b]) for a, b in self._segments(energy)]
            out.append(" ".join(self.model.predict(np.stack(feats))) if feats else "")
        return out

    def size(self) -> int:
        return int(self.model[-1].support_vectors_.size)

    def _frames(self, wave: np.ndarray):
        return mfcc(wave, self.sample_rate)

    def _segments(self, energy: np.ndarray) -> list[tuple[int, int]]:
        threshold, pause, valley = self.cut
        return segments(energy, threshold, pause, HOP_S, valley)


def _waves(raw: dict) -> list[np.ndarray]:
    return [w[:n] for w, n in zip(raw["wave"], raw["samples"])]


def mfcc(wave: np.ndarray, sample_rate: int, n_mfcc: int = N_MFCC, n_mels: int = N_MELS):
    """([frames, 2 * n_mfcc] MFCCs and their deltas, [frames] log energy in dB), 25 ms frames every 10 ms."""
    from scipy.fft import dct

    win, hop = round(WINDOW_S * sample_rate), round(HOP_S * sample_rate)
    n_fft = 1 << (win - 1).bit_length()
    wave = np.append(wave[:1], wave[1:] - 0.97 * wave[:-1])  # pre-emphasis: flatten speech's falling spectrum
    wave = np.pad(wave, (0, max(win - len(wave), 0)))  # at least one frame
    frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::hop] * np.hamming(win)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft
    logmel = np.log(power @ mel_filterbank(sample_rate, n_fft, n_mels) + 1e-10)
    cep = dct(logmel, type=2, norm="ortho", axis=1)[:, :n_mfcc]
    cep = cep - cep.mean(axis=0)  # cepstral mean normalisation: the channel and voice colour, per utterance
    delta = np.gradient(cep, axis=0) if len(cep) > 1 else np.zeros_like(cep)
    energy = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)
    return np.hstack([cep, delta]).astype(np.float32), energy


def segments(energy: np.ndarray, threshold_db: float, min_pause_s: float, hop_s: float,
             valley_db: float | None = None) -> list[tuple[int, int]]:
    """[start, end) frame ranges of words: frames within `threshold_db` of the loudest, pauses shorter than
    `min_pause_s` bridged, pieces shorter than MIN_WORD_S dropped; with `valley_db`, a piece is also cut where
    its (smoothed) energy dips that far below the loudest frames on both sides (words that run together)."""
    if not len(energy):
        return []
    loud = energy > energy.max() - threshold_db
    runs, start = [], None
    for i, on in enumerate(list(loud) + [False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append([start, i])
            start = None
    merged = []
    for a, b in runs:
        if merged and (a - merged[-1][1]) * hop_s < min_pause_s:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    shortest = max(1, int(round(MIN_WORD_S / hop_s)))
    pieces = [(a, b) for a, b in merged if b - a >= shortest]
    if valley_db is None:
        return pieces
    smooth = np.convolve(energy, np.ones(5) / 5, mode="same")
    return [cut for a, b in pieces for cut in _split_at_valleys(smooth, a, b, valley_db, 2 * shortest)]


def _split_at_valleys(energy: np.ndarray, a: int, b: int, depth_db: float, shortest: int) -> list[tuple[int, int]]:
    """Cut [a, b) at its deepest valley while that valley is `depth_db` below the peaks either side of it."""
    if b - a <= 2 * shortest:
        return [(a, b)]
    inner = np.arange(a + shortest, b - shortest)
    left = np.maximum.accumulate(energy[a:b])[inner - a]
    right = np.maximum.accumulate(energy[a:b][::-1])[::-1][inner - a]
    depth = np.minimum(left, right) - energy[inner]
    best = int(np.argmax(depth))
    if depth[best] < depth_db:
        return [(a, b)]
    cut = int(inner[best])
    return _split_at_valleys(energy, a, cut, depth_db, shortest) + _split_at_valleys(energy, cut, b, depth_db, shortest)


def word_features(cep: np.ndarray) -> np.ndarray:
    """A fixed-length description of one word: mean and spread of its MFCCs and deltas, the MFCC means of its
    first, middle and last thirds (the order of its sounds), and its length."""
    n = len(cep)
    thirds = [cep[int(i * n / 3):max(int((i + 1) * n / 3), int(i * n / 3) + 1), :N_MFCC].mean(axis=0)
              for i in range(3)]
    return np.concatenate([cep.mean(axis=0), cep.std(axis=0), *thirds, [np.log(n)]])


def pocketsphinx_reference(paths, vocabulary=None, sample_rate: int = 16000) -> list[str]:
    """Transcripts of audio files by pocketsphinx's shipped US English model (an n-gram language model of
    general English), lower case, for comparison with the same WER/CER metrics. `vocabulary` (a list of
    words) restricts decoding to any sequence of those words instead."""
    try:
        from pocketsphinx import Decoder
    except ImportError as err:
        raise DeepstationError("pocketsphinx_reference needs pocketsphinx; install it with "
                               "`pip install pocketsphinx`") from err
    import soundfile as sf

    decoder = Decoder(samprate=sample_rate, loglevel="FATAL")  # its log goes to stderr otherwise
    if vocabulary:
        missing = [w for w in vocabulary if decoder.lookup_word(w.lower()) is None]
        if missing:
            raise DeepstationError(f"pocketsphinx_reference: the word(s) {', '.join(missing)} are not in "
                                   f"pocketsphinx's dictionary; leave out vocabulary or those words")
        decoder.add_jsgf_string("words", "#JSGF V1.0;\ngrammar words;\npublic <utterance> = ( "
                                + " | ".join(w.lower() for w in vocabulary) + " )+;\n")
        decoder.activate_search("words")
    out = []
    for path in paths:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
        wave = resample(wave.mean(axis=1), rate, sample_rate)
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out.append(" ".join(hyp.hypstr.lower().split()) if hyp is not None else "")
    return out
