"""Images: a glyph classifier on hand-picked features, and for captions: segment the strip into glyphs by its
column projection, classify each glyph into the words it carries (learnt from the training rows), join them."""
from __future__ import annotations

import numpy as np

from deepstation.baselines import NotApplicable
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
    description = ("column-projection segmentation -> per-glyph zoning/projection/HOG features per channel -> SVM "
                   "(RBF), each glyph read as the words it carries")

    def __init__(self, task):
        self.unit = task.outputs[0].unit

    def fit(self, images: np.ndarray, texts: np.ndarray) -> "SegmentAndClassify":
        """Learn how many words each glyph carries (one digit: 1; a colour and a shape: 2) from the training rows,
        then a classifier from each glyph to its group of words. NotApplicable when words and glyphs do not line
        up."""
        rows = [(image, self._tokens(text)) for image, text in zip(images, texts)]
        self.words_per_glyph = self._words_per_glyph(rows)
        k = self.words_per_glyph
        feats, labels = [], []
        for image, tokens in rows:
            if not tokens or len(tokens) % k:
                continue
            groups = [self._join(tokens[i:i + k]) for i in range(0, len(tokens), k)]
            glyphs = glyphs_of(image, len(groups))  # training strips: cut into as many pieces as there are groups
            if len(glyphs) == len(groups):
                feats += [_features(g) for g in glyphs]
                labels += groups
        if len(set(labels)) < 2:
            raise NotApplicable(f"the training captions give {len(set(labels))} distinct group(s) of {k} word(s) "
                                f"per glyph; a classifier needs at least 2")
        self.model = _classifier().fit(np.stack(feats), labels)
        return self

    def _words_per_glyph(self, rows: list) -> int:
        """The whole number of words per glyph that most training rows agree on; refused below half of them."""
        counts = {}
        for image, tokens in rows:
            found = len(glyphs_of(image))
            if found and tokens and len(tokens) % found == 0:
                counts[len(tokens) // found] = counts.get(len(tokens) // found, 0) + 1
        if not rows or not counts:
            raise NotApplicable("the glyphs found in the training images do not line up with their captions' words "
                                "(no row has a whole number of words per glyph)")
        k = max(counts, key=counts.get)
        if counts[k] < len(rows) / 2:
            raise NotApplicable(f"the glyphs found in the training images do not line up with their captions' words: "
                                f"only {counts[k]} of {len(rows)} training rows carry {k} word(s) per glyph")
        return k

    def predict(self, images: np.ndarray) -> list[str]:
        out = []
        for image in images:
            glyphs = glyphs_of(image)
            words = list(self.model.predict(np.stack([_features(g) for g in glyphs]))) if glyphs else []
            out.append(self._join(words))
        return out

    def _tokens(self, text: str) -> list[str]:
        return text.split() if self.unit == "word" else list(text)

    def _join(self, tokens: list[str]) -> str:
        return " ".join(tokens) if self.unit == "word" else "".join(tokens)

    def size(self) -> int:
        return int(self.model[-1].support_vectors_.size)


def _features(glyph: np.ndarray) -> np.ndarray:
    """[C, h, w] -> glyph features of each channel, side by side: a red and a blue circle differ."""
    return np.concatenate([glyph_features(channel) for channel in glyph])


def glyphs_of(image: np.ndarray, expected: int | None = None) -> list[np.ndarray]:
    """[C, H, W] -> glyphs [C, h, w], segmented on the brightest channel (ink of any colour)."""
    ink = image.max(axis=0)
    return [np.stack([_crop(channel[:, a:b], ink[:, a:b]) for channel in image]) for a, b in _columns(ink, expected)]


def segment(image: np.ndarray, expected: int | None = None, threshold: float = 0.25) -> list[np.ndarray]:
    """Glyphs from a strip [H, W]: runs of columns holding ink. A run much wider than a glyph is cut in equal parts;
    with `expected` (training), the widest runs are cut until there are that many pieces."""
    return [_crop(image[:, a:b]) for a, b in _columns(image, expected, threshold)]


def _columns(image: np.ndarray, expected: int | None = None, threshold: float = 0.25) -> list[list[int]]:
    """The [start, end) columns of each glyph in a strip [H, W] (see segment)."""
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
    return pieces


def _crop(piece: np.ndarray, ink: np.ndarray | None = None) -> np.ndarray:
    """The rows holding ink (of `ink`, default the piece itself), centred on a square canvas."""
    rows = np.flatnonzero((piece if ink is None else ink).max(axis=1) > 0.25)
    if len(rows):
        piece = piece[rows[0]:rows[-1] + 1]
    h, w = piece.shape
    size = max(h, w)
    square = np.zeros((size, size), dtype=np.float32)  # centred on a square canvas, aspect kept
    square[(size - h) // 2:(size - h) // 2 + h, (size - w) // 2:(size - w) // 2 + w] = piece
    return square
