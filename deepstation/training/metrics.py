"""Metrics per output type, on numpy arrays. One module for deep models and baselines alike."""
from __future__ import annotations

import math

import numpy as np

MAXIMISE = {"accuracy", "macro_f1"}
NAMES = {"category": ["accuracy", "macro_f1"], "number": ["mae", "rmse", "mape"],
         "sequence": ["exact_match", "cer", "wer"]}
MAXIMISE = MAXIMISE | {"exact_match"}


def category(true: np.ndarray, pred: np.ndarray, classes: int) -> dict:
    """true may hold -1 (a label unseen in training): it counts as a miss and as nobody's true positive."""
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    accuracy = float(np.mean(true == pred)) if len(true) else math.nan
    seen = true >= 0
    confusion = np.bincount(true[seen] * classes + pred[seen], minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp + np.bincount(pred[~seen], minlength=classes)
    fn = confusion.sum(axis=1) - tp
    counted = tp + fp + fn > 0  # classes absent from both truth and predictions do not count
    f1 = 2 * tp[counted] / (2 * tp[counted] + fp[counted] + fn[counted])
    return {"accuracy": accuracy, "macro_f1": float(f1.mean()) if counted.any() else math.nan}


def number(true: np.ndarray, pred: np.ndarray) -> dict:
    err = pred - true
    nonzero = true != 0
    return {
        "mae": float(np.mean(np.abs(err))) if len(err) else math.nan,
        "rmse": float(np.sqrt(np.mean(err ** 2))) if len(err) else math.nan,
        # percent; rows whose true value is 0 have no percentage error and are left out
        "mape": float(np.mean(np.abs(err[nonzero] / true[nonzero])) * 100) if nonzero.any() else math.nan,
    }


def sequence(true: list[str], pred: list[str]) -> dict:
    """exact_match: share of texts predicted whole; cer and wer: edit distance over the reference's characters
    (words), summed over all texts (as speech recognition reports them)."""
    if not true:
        return {"exact_match": math.nan, "cer": math.nan, "wer": math.nan}
    chars = sum(edit_distance(t, p) for t, p in zip(true, pred)) / max(sum(len(t) for t in true), 1)
    words = sum(edit_distance(t.split(), p.split()) for t, p in zip(true, pred)) / max(
        sum(len(t.split()) for t in true), 1)
    return {"exact_match": float(np.mean([t == p for t, p in zip(true, pred)])), "cer": chars, "wer": words}


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (strings or lists of words)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def forecast(true: np.ndarray, pred: np.ndarray, scale: float | None) -> dict:
    """number metrics plus sMAPE (%) and MASE (MAE over the seasonal naive forecast's in-sample MAE)."""
    true, pred = true.ravel(), pred.ravel()
    denom = np.abs(true) + np.abs(pred)
    ok = denom > 0
    result = number(true, pred)
    result["smape"] = float(np.mean(2 * np.abs(pred - true)[ok] / denom[ok]) * 100) if ok.any() else math.nan
    result["mase"] = result["mae"] / scale if scale else math.nan
    return result


def names(outputs, forecasting: bool = False) -> list[str]:
    """Every metric a task reports: `loss`, then per output its metrics (prefixed when there are several)."""
    result = ["loss"]
    for o in outputs:
        extra = ["smape", "mase"] if forecasting and o.type == "number" else []
        result += [key(o.name, m, len(outputs)) for m in NAMES[o.type] + extra]
    return result


def key(output: str, metric: str, n_outputs: int) -> str:
    return metric if n_outputs == 1 else f"{output}_{metric}"


def improved(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return not math.isnan(new)
    return new > best if higher_is_better(metric) else new < best


def higher_is_better(metric: str) -> bool:
    return any(metric == m or metric.endswith("_" + m) for m in MAXIMISE)
