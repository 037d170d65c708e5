"""Images: a glyph classifier on hand-picked features, and for captions: segment the strip into glyphs by its
column projection, classify each glyph, join the words."""
from __future__ import annotations

import numpy as np

from deepstation.baselines.features import glyph_features


def _classifier():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=10, gamma="scale"))


def _gray(images: np.ndarray) -> np.ndarray:
    """[N, C, H, W] in 0..1 -> [N, H, W]."""
    return images.mean(axis=1)


class GlyphClassifier:
    description = "zoning, projections and gradient-orientation histograms -> SVM (RBF)"

    def __init__(self, task):
        pass

    def fit(self, images: np.ndarray, labels: np.ndarray) -> "GlyphClassifier":
        self.model = _classifier().fit(np.stack([glyph_features(im) for im in _gray(images)]), labels.astype(str))
        self.kind = type(labels[0])
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        pred = self.model.predict(np.stack([glyph_features(im) for im in _gray(images)]))
        return np.asarray([self.kind(p) for p in pred], dtype=object)

    def size(self) -> int:
        return int(self.model[-1].support_vectors_.size)


class SegmentAndClassify:
    description = "column-projection segmentation -> per-glyph zoning/projection/HOG features -> SVM (RBF)"

    def __init__(self, task):
        self.unit = task.outputs[0].unit

    def fit(self, images: np.ndarray, texts: np.ndarray) -> "SegmentAndClassify":
        feats, labels = [], []
        for image, text in zip(_gray(images), texts):
            tokens = self._tokens(text)
            glyphs = segment(image, len(tokens))  # training strips: cut into as many pieces as there are words
            if len(glyphs) == len(tokens):
                feats += [glyph_features(g) for g in glyphs]
                labels += tokens
        self.model = _classifier().fit(np.stack(feats), labels)
        return self

    def predict(self, images: np.ndarray) -> list[str]:
        out = []
        for image in _gray(images):
            glyphs = segment(image)
            words = list(self.model.predict(np.stack([glyph_features(g) for g in glyphs]))) if glyphs else []
            out.append(" ".join(words) if self.unit == "word" else "".join(words))
        return out

    def _tokens(self, text: str) -> list[str]:
        return text.split() if self.unit == "word" else list(text)

    def size(self) -> int:
        return int(self.model[-1].support_vectors_.size)


def segment(image: np.ndarray, expected: int | None = None, threshold: float = 0.25) -> list[np.ndarray]:
    """Glyphs from a strip: runs of columns holding ink. A run much wider than a glyph is cut in equal parts;
    with `expected` (training), the widest runs are cut until there are that many pieces."""
    ink = image > threshold
    columns = ink.sum(axis=0) > 0
    runs, start = [], None
    for x, on in enumerate(list(columns) + [False]):
        if on and start is None:
            start = x
        elif not on and start is not None:
            if x - start >= 2:  # specks of noise are not glyphs
                runs.append([start, x])
            start = None
    typical = image.shape[0] * 0.8
    pieces = []
    for a, b in runs:
        parts = max(1, int(round((b - a) / typical)))
        edges = np.linspace(a, b, parts + 1).astype(int)
        pieces += [[edges[i], edges[i + 1]] for i in range(parts)]
    while expected is not None and 0 < len(pieces) < expected:
        widest = max(range(len(pieces)), key=lambda i: pieces[i][1] - pieces[i][0])
        a, b = pieces[widest]
        if b - a < 4:
            break
        pieces[widest:widest + 1] = [[a, (a + b) // 2], [(a + b) // 2, b]]
    return [_crop(image[:, a:b]) for a, b in pieces]


def _crop(piece: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(piece.max(axis=1) > 0.25)
    if len(rows):
        piece = piece[rows[0]:rows[-1] + 1]
    h, w = piece.shape
    size = max(h, w)
    square = np.zeros((size, size), dtype=np.float32)  # centred on a square canvas, aspect kept
    square[(size - h) // 2:(size - h) // 2 + h, (size - w) // 2:(size - w) // 2 + w] = piece
    return square
