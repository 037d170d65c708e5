"""Table inputs: numeric columns standardised on the training rows, category columns as embedding indices."""
from __future__ import annotations

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError

UNKNOWN = 0  # embedding index for a category value never seen in training


def numeric_column(frame: pd.DataFrame, column: str, origin: str, field: str) -> np.ndarray:
    """The column as float64; a missing value or text stops with its row and column named."""
    values = frame[column]
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(parsed))
    if len(bad):
        row = int(bad[0])
        got = values.iloc[row]
        what = "an empty value" if pd.isna(got) else f"{got!r}"
        raise DeepstationError(f"{origin}: row {row + 1}, column `{column}` ({field}): expected a number, got {what}; "
                               f"fix or drop that row ({len(bad)} such row(s) in all)")
    return parsed


class TableCodec:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state

    def columns(self) -> dict[str, str]:
        return {c: f"inputs.{self.spec.name}" for c in self.spec.columns + self.spec.categorical}

    def read(self, table, on_bad_sample="error"):
        origin, frame, field = table.origin, table.frame, f"inputs.{self.spec.name}.columns"
        num = np.stack([numeric_column(frame, c, origin, field) for c in self.spec.columns], axis=1) \
            if self.spec.columns else np.zeros((len(frame), 0))
        cat = frame[self.spec.categorical].astype("string").fillna("").to_numpy(dtype=object) \
            if self.spec.categorical else np.zeros((len(frame), 0), dtype=object)
        return {"num": num, "cat": cat}, np.zeros(len(frame), dtype=bool)

    def fit(self, raw) -> None:
        num = raw["num"]
        std = num.std(axis=0) if len(num) else np.ones(num.shape[1])
        self.state = {
            "mean": num.mean(axis=0).tolist() if len(num) else [0.0] * num.shape[1],
            "std": np.where(std > 0, std, 1.0).tolist(),
            "vocab": [sorted(set(raw["cat"][:, j].tolist())) for j in range(raw["cat"].shape[1])],
        }

    def encode(self, raw) -> dict:
        import torch

        num = (raw["num"] - np.asarray(self.state["mean"])) / np.asarray(self.state["std"])
        cat = np.zeros(raw["cat"].shape, dtype=np.int64)
        for j, vocab in enumerate(self.state["vocab"]):
            index = {v: i + 1 for i, v in enumerate(vocab)}
            cat[:, j] = [index.get(v, UNKNOWN) for v in raw["cat"][:, j]]
        return {"num": torch.tensor(num, dtype=torch.float32), "cat": torch.from_numpy(cat)}

    def shape(self) -> dict:
        return {"type": "table", "num": len(self.spec.columns),
                "cat_sizes": [len(v) + 1 for v in self.state["vocab"]]}
