"""Output columns as training targets: category labels as class indices, numbers standardised on train."""
from __future__ import annotations

import numpy as np
import pandas as pd

from deepstation.data.table import numeric_column
from deepstation.errors import DeepstationError

UNSEEN = -1  # a label in valid/test (or at evaluation) that training never saw; scored as a miss


class CategoryTarget:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"outputs.{self.spec.name}.column"}

    def read(self, table) -> np.ndarray:
        values = table.frame[self.spec.column]
        missing = np.flatnonzero(values.isna().to_numpy())
        if len(missing):
            raise DeepstationError(f"{table.origin}: row {missing[0] + 1}, column `{self.spec.column}` "
                                   f"(outputs.{self.spec.name}): the label is empty; give every row a label or "
                                   f"drop it ({len(missing)} such row(s))")
        return np.asarray([_plain(v) for v in values], dtype=object)

    def fit(self, raw) -> None:
        self.state = {"labels": sorted(set(raw.tolist()), key=lambda v: (isinstance(v, str), v))}

    def encode(self, raw):
        import torch

        index = {v: i for i, v in enumerate(self.state["labels"])}
        return torch.tensor([index.get(v, UNSEEN) for v in raw.tolist()], dtype=torch.long)

    def unseen(self, raw) -> list:
        known = set(self.state["labels"])
        return sorted({v for v in raw.tolist() if v not in known}, key=str)

    def decode(self, classes) -> list:
        labels = self.state["labels"]
        return [labels[i] for i in classes]

    def shape(self) -> dict:
        return {"type": "category", "classes": len(self.state["labels"])}


class NumberTarget:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"outputs.{self.spec.name}.column"}

    def read(self, table) -> np.ndarray:
        return numeric_column(table.frame, self.spec.column, table.origin, f"outputs.{self.spec.name}")

    def fit(self, raw) -> None:
        std = float(raw.std()) if len(raw) else 1.0
        self.state = {"mean": float(raw.mean()) if len(raw) else 0.0, "std": std if std > 0 else 1.0}

    def encode(self, raw):
        import torch

        return torch.tensor((raw - self.state["mean"]) / self.state["std"], dtype=torch.float32)

    def decode(self, values) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.state["std"] + self.state["mean"]

    def unseen(self, raw) -> list:
        return []

    def shape(self) -> dict:
        return {"type": "number", "size": 1}


def _plain(value):
    """numpy scalars -> python, whole floats from a CSV column with gaps -> int, so labels compare and save as JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, str)):
        return value
    return str(value) if not isinstance(value, pd.Timestamp) else value.isoformat()
