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


def forecast(true: np.ndarray, pred: np.ndarray, scale, interval: tuple | None = None) -> dict:
    """number metrics plus sMAPE (%) and MASE over rows of forecasts ([rows, horizon]; a row per series and origin):
    MASE is each row's MAE over its series' in-sample seasonal naive error (`scale`, a number or one per row),
    averaged over rows, as M4 scores it. `interval` (lower, upper, alpha): a (1 - alpha) prediction interval per
    point, scored by its coverage and M4's MSIS (interval width plus 2/alpha times each miss, over the scale)."""
    true, pred = np.atleast_2d(np.asarray(true, dtype=np.float64)), np.atleast_2d(np.asarray(pred, dtype=np.float64))
    scale = np.broadcast_to(np.asarray(scale if scale is not None else np.nan, dtype=np.float64), (len(true),))
    denom = np.abs(true) + np.abs(pred)
    ok = denom > 0
    result = number(true.ravel(), pred.ravel())
    result["smape"] = float(np.mean(2 * np.abs(pred - true)[ok] / denom[ok]) * 100) if ok.any() else math.nan
    result["mase"] = _per_series(np.abs(pred - true).mean(axis=1), scale)
    if interval is not None:
        lower, upper, alpha = interval
        lower, upper = np.atleast_2d(lower), np.atleast_2d(upper)
        result["coverage"] = float(np.mean((true >= lower) & (true <= upper))) if true.size else math.nan
        penalty = (upper - lower) + 2 / alpha * ((lower - true) * (true < lower) + (true - upper) * (true > upper))
        result["msis"] = _per_series(penalty.mean(axis=1), scale)
    return result


def _per_series(errors: np.ndarray, scale: np.ndarray) -> float:
    """Mean of each row's error over its scale; rows of a constant series (no scale) are left out."""
    ok = np.isfinite(scale) & (scale > 0)
    return float(np.mean(errors[ok] / scale[ok])) if ok.any() else math.nan


def owa(scores: dict, naive2: dict) -> float:
    """M4's overall weighted average: the mean of sMAPE and MASE, each relative to Naive2's on the same series."""
    try:
        return 0.5 * (scores["smape"] / naive2["smape"] + scores["mase"] / naive2["mase"])
    except (KeyError, TypeError, ZeroDivisionError):
        return math.nan


def names(outputs, forecasting: bool = False) -> list[str]:
    """Every metric a task reports: `loss`, then per output its metrics (prefixed when there are several)."""
    result = ["loss"]
    for o in outputs:
        extra = ["smape", "mase"] if forecasting and o.type == "number" else []
        extra += ["coverage", "msis"] if forecasting and o.type == "number" and o.quantiles else []
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
