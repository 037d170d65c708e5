"""M4 Weekly: the 359 weekly series of the M4 forecasting competition (Makridakis, Spiliotis, Assimakopoulos,
2018), shipped in this package as the competition published them (Mcompetitions/M4-methods, Dataset/Train and
Dataset/Test, gzipped): one row per series, the id then its values oldest first; the test file holds the next 13
values of each. Read here in long format, the test values last, so that a task with horizon 13 tests on exactly
M4's test points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError

FOLDER = Path(__file__).parent / "m4"
HORIZON = 13


def weekly(n: int | None = None) -> pd.DataFrame:
    """Rows of id, t (1, 2, ... within each series), value; `n`: only the first n series (W1, W2, ...)."""
    if n is not None and not (isinstance(n, int) and 1 <= n <= 359):
        raise DeepstationError(f"data.options.n: expected a whole number of series from 1 to 359, got {n!r}")
    train = pd.read_csv(FOLDER / "Weekly-train.csv.gz", nrows=n)
    test = pd.read_csv(FOLDER / "Weekly-test.csv.gz", nrows=n)
    ids, steps, values = [], [], []
    for (_, past), (_, future) in zip(train.iterrows(), test.iterrows()):
        series = np.concatenate([past.iloc[1:].dropna().to_numpy(dtype=np.float64),
                                 future.iloc[1:].to_numpy(dtype=np.float64)])
        ids.append(np.full(len(series), past.iloc[0], dtype=object))
        steps.append(np.arange(1, len(series) + 1))
        values.append(series)
    return pd.DataFrame({"id": np.concatenate(ids), "t": np.concatenate(steps), "value": np.concatenate(values)})
