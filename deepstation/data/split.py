"""Deterministic train/valid/test split by seed, stratified by a category column when given."""
from __future__ import annotations

import numpy as np


def split_rows(n: int, valid: float, test: float, seed: int, strata=None) -> dict[str, np.ndarray]:
    """Row positions per split. Each stratum (class) is shuffled and cut in the same proportions."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in _unique_in_order(strata)]
    parts = {"train": [], "valid": [], "test": []}
    for rows in groups:
        rows = rng.permutation(rows)
        n_test, n_valid = round(len(rows) * test), round(len(rows) * valid)
        parts["test"].append(rows[:n_test])
        parts["valid"].append(rows[n_test:n_test + n_valid])
        parts["train"].append(rows[n_test + n_valid:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def _unique_in_order(values) -> list:
    # sorted by string form so mixed types and the order of rows do not change the result
    return sorted(set(values.tolist()), key=str)
