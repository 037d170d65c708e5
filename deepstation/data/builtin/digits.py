"""scikit-learn's bundled handwritten digits: 1,797 images of 8x8 pixels, labels 0-9."""
from __future__ import annotations

import numpy as np
import pandas as pd


def load() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    return pd.DataFrame({"image": list(images), "label": digits.target.astype(int)})
