"""Output columns as training targets: category labels as class indices, numbers standardised on train, text as
token sequences."""
from __future__ import annotations

import numpy as np
import pandas as pd

from deepstation.data.table import numeric_column
from deepstation.errors import DeepstationError

UNSEEN = -1  # a label in valid/test (or at evaluation) that training never saw; scored as a miss


class _Target:
    """What every target codec shares: its output's spec, what it learned (state), the one column it reads."""

    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"outputs.{self.spec.name}.column"}


class CategoryTarget(_Target):
    def read(self, table) -> np.ndarray:
        values = table.frame[self.spec.column]
        _no_empty(table, self.spec, [pd.isna(v) for v in values], "the label is empty; give every row a label")
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


class NumberTarget(_Target):
    """A number per row, or for forecasting (see deepstation.data.series) `horizon` numbers relative to the
    window's level: the raw values are then [level, scale, y_1..y_H] (scale: the series' MASE yardstick) and
    decoding puts the level back (difference or ratio) and undoes a log."""

    def __init__(self, spec, state: dict | None = None):
        super().__init__(spec, state)
        self.forecast = state.get("forecast") if state else None

    def read(self, table) -> np.ndarray:
        from deepstation.data.series import LEVEL, SCALE

        found = table.frame.attrs.get("forecast")
        if found:  # what decoding needs; not the series themselves
            self.forecast = {k: found[k] for k in ("log", "horizon", "season", "scaling")}
        if self.forecast:
            return np.column_stack([table.frame[LEVEL].to_numpy(dtype=np.float64),
                                    table.frame[SCALE].to_numpy(dtype=np.float64),
                                    np.stack(table.frame[self.spec.column].tolist()).astype(np.float64)])
        return numeric_column(table.frame, self.spec.column, table.origin, f"outputs.{self.spec.name}")

    def fit(self, raw) -> None:
        values = raw[:, 2:] if raw.ndim == 2 else raw
        std = float(values.std()) if len(values) else 1.0
        self.state = {"mean": float(values.mean()) if len(values) else 0.0, "std": std if std > 0 else 1.0,
                      "forecast": self.forecast}

    def encode(self, raw):
        import torch

        if raw.ndim == 2:
            return {"y": torch.tensor((raw[:, 2:] - self.state["mean"]) / self.state["std"], dtype=torch.float32),
                    "level": torch.tensor(raw[:, 0], dtype=torch.float64),
                    "scale": torch.tensor(raw[:, 1], dtype=torch.float64)}
        return torch.tensor((raw - self.state["mean"]) / self.state["std"], dtype=torch.float32)

    def decode(self, values, level=None) -> np.ndarray:
        """Standardised model outputs -> the output's own units. Forecasts ([N, H] or [N, H, quantiles]) need
        each row's level."""
        values = np.asarray(values, dtype=np.float64) * self.state["std"] + self.state["mean"]
        if level is None:
            return values
        return self.absolute_values(values, level)

    def absolute_values(self, relative: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Values relative to each row's level (as the windows hold them) -> the output's own units."""
        level = np.asarray(level, dtype=np.float64).reshape(-1, *([1] * (relative.ndim - 1)))
        f = self.state["forecast"]
        values = (relative + 1) * level if f.get("scaling") == "ratio" else relative + level
        return np.exp(values) if f["log"] else values

    def absolute(self, raw: np.ndarray) -> np.ndarray:
        """Raw forecasting targets [level, scale, y...] -> the values in the output's own units."""
        return self.absolute_values(raw[:, 2:], raw[:, 0])

    def unseen(self, raw) -> list:
        return []

    def shape(self) -> dict:
        return {"type": "number", "size": self.spec.horizon, "quantiles": list(self.spec.quantiles or []),
                "mean": self.state["mean"], "std": self.state["std"], "forecast": self.state.get("forecast")}


class SequenceTarget(_Target):
    """Text as a sequence of tokens (characters or words) for a CTC head. Index 0 is CTC's blank."""

    def read(self, table) -> np.ndarray:
        values = table.frame[self.spec.column]
        _no_empty(table, self.spec, [pd.isna(v) or not str(v).strip() for v in values],
                  "the text is empty; every row needs a caption or transcript")
        return np.asarray([" ".join(str(v).split()) for v in values], dtype=object)

    def tokens(self, text: str) -> list[str]:
        return text.split() if self.spec.unit == "word" else list(text)

    def join(self, tokens: list[str]) -> str:
        return " ".join(tokens) if self.spec.unit == "word" else "".join(tokens)

    def fit(self, raw) -> None:
        self.state = {"vocab": sorted({t for text in raw.tolist() for t in self.tokens(text)})}

    def encode(self, raw) -> dict:
        import torch

        index = {t: i + 1 for i, t in enumerate(self.state["vocab"])}
        seqs = [[index[t] for t in self.tokens(text) if t in index] for text in raw.tolist()]
        width = max((len(s) for s in seqs), default=0)
        tokens = torch.zeros((len(seqs), max(width, 1)), dtype=torch.long)
        for i, s in enumerate(seqs):
            tokens[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        return {"tokens": tokens, "lengths": torch.tensor([len(s) for s in seqs], dtype=torch.long)}

    def decode(self, sequences) -> list[str]:
        vocab = self.state["vocab"]
        return [self.join([vocab[i - 1] for i in seq if 0 < i <= len(vocab)]) for seq in sequences]

    def texts(self, target: dict) -> list[str]:
        """The reference texts back from encoded targets (tokens never seen in training are gone)."""
        return self.decode([row[:n].tolist() for row, n in zip(target["tokens"], target["lengths"])])

    def unseen(self, raw) -> list:
        known = set(self.state["vocab"])
        return sorted({t for text in raw.tolist() for t in self.tokens(text) if t not in known})

    def shape(self) -> dict:
        return {"type": "sequence", "classes": len(self.state["vocab"]) + 1}


def _plain(value):
    """numpy scalars -> python, whole floats from a CSV column with gaps -> int, so labels compare and save as JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, str)):
        return value
    return str(value) if not isinstance(value, pd.Timestamp) else value.isoformat()


def _no_empty(table, spec, empty: list, what: str) -> None:
    """Stop at the first empty target, naming its row; `what` says what is wrong and what a row needs."""
    rows = np.flatnonzero(empty)
    if len(rows):
        raise DeepstationError(f"{table.origin}: row {rows[0] + 1}, column `{spec.column}` (outputs.{spec.name}): "
                               f"{what}; fix or drop such rows ({len(rows)} in all)")
