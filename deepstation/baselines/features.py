"""Hand-picked image features, the kind a person designs before deep learning: zoning, projections and
histograms of gradient orientations (HOG-like)."""
from __future__ import annotations

import numpy as np

ORIENTATIONS = 8


def glyph_features(image: np.ndarray, zones: int = 4, cells: int = 2) -> np.ndarray:
    """One 2-D image (0..1) -> a fixed-length vector, whatever its size."""
    image = _square(image, 16)
    h, w = image.shape
    zoning = image.reshape(zones, h // zones, zones, w // zones).mean(axis=(1, 3)).ravel()
    rows, cols = image.mean(axis=1), image.mean(axis=0)
    gy, gx = np.gradient(image)
    magnitude = np.hypot(gx, gy)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * ORIENTATIONS  # unsigned orientation, 0..8
    bins = np.minimum(angle.astype(int), ORIENTATIONS - 1)
    hog = []
    for i in range(cells):
        for j in range(cells):
            part = (slice(i * h // cells, (i + 1) * h // cells), slice(j * w // cells, (j + 1) * w // cells))
            hist = np.bincount(bins[part].ravel(), weights=magnitude[part].ravel(), minlength=ORIENTATIONS)
            hog.append(hist / (np.linalg.norm(hist) + 1e-6))
    return np.concatenate([zoning, rows, cols, *hog, [image.mean(), h / max(w, 1)]])


def _square(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if image.shape == (size, size):
        return image.astype(np.float32)
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
