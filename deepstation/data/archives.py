"""The time series classification archives' own files, read as a `label` column and a `series` column of arrays
([length, channels]), so that `columns: [series]` works on them as downloaded:

- UCR/UEA `.tsv` (the 2018 archive): no header; each line a label, then the values. Unequal-length sets pad the
  shorter series with NaN at the end: those are cut off again.
- sktime's `.ts`: a header of @-lines, then one series per line, its dimensions separated by `:` and the label
  last. Multivariate and unequal-length series too; a multivariate file also gets a column per dimension
  (`dim_0`, `dim_1`, ...) holding that dimension alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError


def headerless_numbers(path: Path) -> bool:
    """Whether the file's first line is numbers only (a UCR .tsv has no header row)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first:
        return False
    try:
        [float(field) for field in first.split("\t")]
    except ValueError:
        return False
    return True


def read_ucr_tsv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", header=None, index_col=False, dtype=np.float64, na_values=["NaN", "nan"])
    if frame.shape[1] < 3:
        raise DeepstationError(f"{path}: a UCR .tsv row holds a label then the series' values; found "
                               f"{frame.shape[1]} field(s) per row")
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float32)
    series = [_cut_padding(row)[:, None] for row in values]
    empty = next((i for i, s in enumerate(series) if len(s) == 0), None)
    if empty is not None:
        raise DeepstationError(f"{path}: line {empty + 1} has a label but no values")
    return pd.DataFrame({"label": _labels(frame.iloc[:, 0]), "series": series})


def read_ts(path: Path) -> pd.DataFrame:
    """An sktime .ts file (univariate or multivariate, equal length or not) with class labels."""
    dims, labels, has_labels = [], [], None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                if key.lower() == "classlabel":
                    has_labels = value.split()[0].lower() == "true" if value.split() else False
                continue
            fields = line.split(":")
            if has_labels:
                labels.append(fields.pop().strip())
            try:
                dims.append([_numbers(field) for field in fields])
            except ValueError as err:
                raise DeepstationError(f"{path}: line {number}: {err}; a .ts line holds comma-separated numbers per "
                                       f"dimension, dimensions separated by `:`") from None
    if not dims:
        raise DeepstationError(f"{path}: no series found after the @data line")
    widths = {len(d) for d in dims}
    if len(widths) > 1:
        raise DeepstationError(f"{path}: series have {' and '.join(map(str, sorted(widths)))} dimensions; every "
                               f"line needs the same number")
    padded = []  # [length, dimensions], a dimension shorter than the line's longest padded with NaN
    for parts in dims:
        length = max(len(p) for p in parts)
        padded.append(np.stack([np.pad(p, (0, length - len(p)), constant_values=np.nan) for p in parts], 1))
    # unlabelled (@classLabel false): series to predict; a task that trains on them is refused for want of `label`
    frame = pd.DataFrame({"label": labels} if has_labels else {})
    frame["series"] = [_cut_padding(s) for s in padded]
    if widths.pop() > 1:
        for k in range(padded[0].shape[1]):
            frame[f"dim_{k}"] = [_cut_padding(s[:, k])[:, None] for s in padded]
    return frame


def _numbers(field: str) -> np.ndarray:
    values = [v for v in field.split(",") if v.strip() != ""]
    return np.asarray([np.nan if v.strip() == "?" else float(v) for v in values], dtype=np.float32)


def _cut_padding(values: np.ndarray) -> np.ndarray:
    """The series less the NaN that pad it at the end (whole rows of NaN, for many channels)."""
    missing = np.isnan(values) if values.ndim == 1 else np.isnan(values).all(axis=1)
    keep = len(values) - int(np.argmax(~missing[::-1])) if (~missing).any() else 0
    return values[:keep]


def _labels(column: pd.Series) -> np.ndarray:
    """Labels as text: 1.0 -> "1" (the UCR files write class numbers as floats)."""
    values = column.to_numpy(dtype=np.float64)
    if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return np.asarray([str(int(v)) for v in values], dtype=object)
    return np.asarray([str(v) for v in values], dtype=object)
