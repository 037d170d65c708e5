"""Fit a task's baseline on the training rows and score every split with the deep model's metrics."""
from __future__ import annotations

import time

import numpy as np

from deepstation.baselines import NotApplicable, baseline_for
from deepstation.training import metrics


def run_baseline(task, data) -> dict | None:
    """{"name", "description", "metrics": {split: {...}}, "fit_seconds", "predict_ms_per_sample", "size",
    "predictions": the last split's (test's) predictions}; {"name", "description", "skipped": why} when the
    baseline cannot apply to the data (NotApplicable); None when the task has no baseline."""
    cls = baseline_for(task)
    if cls is None:
        return None
    inp, out = task.inputs[0].name, task.outputs[0].name
    codec = data.targets[out]
    train_in, train_out = data.raw["train"]
    model = cls(task)
    began = time.perf_counter()
    try:
        model.fit(train_in[inp], train_out[out])
    except NotApplicable as err:
        return {"name": cls.__name__, "description": cls.description, "skipped": str(err)}
    fit_seconds = time.perf_counter() - began
    result, timing = {}, None
    for split, (inputs, outputs) in data.raw.items():
        if not len(outputs[out]):
            continue
        began = time.perf_counter()
        pred = model.predict(inputs[inp])
        if split == "test" or timing is None:
            timing = (time.perf_counter() - began) / len(outputs[out]) * 1000
        result[split] = score(codec, outputs[out], pred)
    return {"name": cls.__name__, "description": cls.description, "metrics": result,
            "fit_seconds": round(fit_seconds, 3), "predict_ms_per_sample": round(timing, 4), "size": model.size(),
            "predictions": list(pred)}


def score(codec, true, pred) -> dict:
    kind = codec.shape()["type"]
    if kind == "category":
        return metrics.category(codec.encode(np.asarray(true, dtype=object)).numpy(),
                                codec.encode(np.asarray(pred, dtype=object)).numpy(), codec.shape()["classes"])
    if kind == "sequence":
        return metrics.sequence([str(t) for t in true], [str(p) for p in pred])
    if codec.state.get("forecast"):  # relative to each window's level: back to the output's own units
        true = np.asarray(true, dtype=np.float64)
        absolute = codec.absolute(np.column_stack([true[:, :2], np.asarray(pred, dtype=np.float64)]))
        return metrics.forecast(codec.absolute(true), absolute, true[:, 1])
    return metrics.number(np.asarray(true, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel())
