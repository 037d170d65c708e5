"""Speech the classical way: find the words by their energy, describe each by MFCC statistics, classify each
with an SVM, join the words. And, for reference, pocketsphinx's shipped English recogniser.

Segmenting by energy cannot split words that run together, so fit() chooses the silence threshold and the
shortest pause that best cut the training utterances into as many pieces as they have words, and trains the
classifier only on utterances cut exactly right.
"""
from __future__ import annotations

import numpy as np

from deepstation.data.audio import mel_filterbank, resample
from deepstation.errors import DeepstationError

WINDOW_S, HOP_S = 0.025, 0.010
N_MELS, N_MFCC = 26, 13
THRESHOLDS_DB = (20, 25, 30, 35, 40)      # below the utterance's loudest frame: silence
MIN_PAUSES_S = (0.03, 0.05, 0.08, 0.12)   # a quieter stretch shorter than this is inside a word
MIN_WORD_S = 0.06


class MfccSegments:
    description = "energy segmentation into words -> per-word MFCC mean/std/thirds -> SVM (RBF)"

    def __init__(self, task):
        self.sample_rate = task.inputs[0].sample_rate

    def fit(self, raw: dict, texts: np.ndarray) -> "MfccSegments":
        frames = [self._frames(w) for w in _waves(raw)]
        words = [str(t).split() for t in texts]
        # the segmentation settings that cut most training utterances into the right number of words
        scores = {(t, p): np.mean([len(segments(e, t, p, HOP_S)) == len(ws) for (_, e), ws in zip(frames, words)])
                  for t in THRESHOLDS_DB for p in MIN_PAUSES_S}
        self.threshold, self.pause = max(scores, key=scores.get)
        self.matched = float(scores[(self.threshold, self.pause)])
        feats, labels = [], []
        for (mfcc, energy), ws in zip(frames, words):
            parts = segments(energy, self.threshold, self.pause, HOP_S)
            if len(parts) == len(ws):
                feats += [word_features(mfcc[a:b]) for a, b in parts]
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
            mfcc, energy = self._frames(wave)
            parts = segments(energy, self.threshold, self.pause, HOP_S)
            feats = [word_features(mfcc[a:b]) for a, b in parts]
            out.append(" ".join(self.model.predict(np.stack(feats))) if feats else "")
        return out

    def size(self) -> int:
        return int(self.model[-1].support_vectors_.size)

    def _frames(self, wave: np.ndarray):
        return mfcc(wave, self.sample_rate)


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


def segments(energy: np.ndarray, threshold_db: float, min_pause_s: float, hop_s: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of words: frames within `threshold_db` of the loudest, pauses shorter than
    `min_pause_s` bridged, pieces shorter than MIN_WORD_S dropped."""
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
    return [(a, b) for a, b in merged if (b - a) * hop_s >= MIN_WORD_S]


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

    decoder = Decoder(samprate=sample_rate)
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
