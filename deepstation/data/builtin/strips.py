"""Digit strips: 3 to 6 of scikit-learn's handwritten digits side by side, captioned with their words.

Gaps, sizes, heights and noise vary by row; everything follows from `seed`. The bundled digits are divided
70/15/15 between the train, valid and test strips first (the `split` column), so a test strip never shows a
glyph seen in training: the score measures reading new handwriting, not recalling pixels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SHARES = {"train": 0.70, "valid": 0.15, "test": 0.15}


def load(n: int = 3000, height: int = 16, width: int = 96, min_digits: int = 3, max_digits: int = 6,
         noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    from sklearn.datasets import load_digits

    if not (1 <= min_digits <= max_digits) or height < 8 or width < 8 * max_digits // 2:
        from deepstation.errors import DeepstationError

        raise DeepstationError(f"data.options: builtin:digit-strips needs 1 <= min_digits <= max_digits, height >= 8 "
                               f"and width >= 4 * max_digits; got min_digits={min_digits}, max_digits={max_digits}, "
                               f"height={height}, width={width}")
    digits = load_digits()
    glyphs, labels = digits.images / 16.0, digits.target
    rng = np.random.default_rng(seed)
    pools = _glyph_pools(labels, rng)
    splits = rng.choice(list(SHARES), size=n, p=list(SHARES.values()))
    images, captions = [], []
    for split in splits:
        k = int(rng.integers(min_digits, max_digits + 1))
        chosen = rng.integers(0, 10, size=k)
        picks = [rng.choice(pools[split][d]) for d in chosen]
        images.append(_strip([glyphs[i] for i in picks], height, width, noise, rng))
        captions.append(" ".join(WORDS[d] for d in chosen))
    return pd.DataFrame({"image": images, "caption": captions, "split": splits})


def _glyph_pools(labels: np.ndarray, rng) -> dict:
    """{split: {digit: glyph indices}}: each digit's glyphs shared out between the splits, disjointly."""
    pools = {s: {} for s in SHARES}
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(labels == d))
        cut1 = int(len(idx) * SHARES["train"])
        cut2 = cut1 + int(len(idx) * SHARES["valid"])
        pools["train"][d], pools["valid"][d], pools["test"][d] = idx[:cut1], idx[cut1:cut2], idx[cut2:]
    return pools


def _strip(glyphs: list, height: int, width: int, noise: float, rng) -> np.ndarray:
    from PIL import Image

    sizes = [int(height * rng.uniform(0.65, 1.0)) for _ in glyphs]
    gaps = [int(rng.integers(0, 4)) for _ in glyphs[1:]]
    room = width - sum(gaps)
    if sum(sizes) > room:  # too wide: shrink every glyph alike
        sizes = [max(4, int(s * room / sum(sizes))) for s in sizes]
    canvas = np.zeros((height, width), dtype=np.float32)
    x = int(rng.integers(0, max(width - sum(sizes) - sum(gaps), 0) + 1))
    for glyph, size, gap in zip(glyphs, sizes, gaps + [0]):
        small = np.asarray(Image.fromarray(glyph.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
        y = int(rng.integers(0, height - size + 1))
        canvas[y:y + size, x:x + size] = np.maximum(canvas[y:y + size, x:x + size], small[:, :width - x])
        x += size + gap
    canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 1)
