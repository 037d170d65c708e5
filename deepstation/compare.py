"""The same task two ways: the deep model that learns its features, and the hand-picked-features baseline,
on the same rows and split, with the same metrics, side by side, plus an HTML report."""
from __future__ import annotations

import time

import numpy as np

from deepstation import files


def compare(task, *, epochs=None, device=None, runs_dir=None, progress=None, track=None) -> dict:
    """Train the deep model (a run folder as `train` makes), fit the baseline, write report.html and
    compare.json into the run folder. Returns {"task", "split", "deep", "baseline", "report"}."""
    from deepstation.baselines.run import run_baseline
    from deepstation.report.html import write_report
    from deepstation.run import train

    run = train(task, epochs=epochs, device=device, runs_dir=runs_dir, progress=progress, track=track)
    data = run.data
    split = "test" if len(data.parts["test"]) else "valid"
    deep_pred, deep_ms = _deep_predictions(run, data.parts[split])
    baseline = run_baseline(run.task, data)
    base_pred = baseline.pop("predictions") if baseline else None
    reference = _reference(run.task, data, split)
    result = {
        "task": run.task.name, "split": split,
        "deep": {"run": run.id, "run_dir": str(run.dir.resolve()), "metrics": run.metrics,
                 "fit_seconds": run.summary["seconds"], "predict_ms_per_sample": round(deep_ms, 4),
                 "parameters": run.summary["parameters"], "backtest": run.summary.get("backtest"),
                 "description": ", ".join(f"{i.name}: {run.task.encoder_for(i.name).kind} encoder"
                                          for i in run.task.inputs) + " (features learned)"},
        "baseline": baseline,
        "report": str((run.dir / "report.html").resolve()),
    }
    if reference:
        result["reference"] = {k: v for k, v in reference.items() if k != "prediction"}
    write_report(run, result, data, split, deep_pred, base_pred, reference)
    files.write_json(run.dir / "compare.json", result)
    _track(run, result)
    return result


def _track(run, result: dict) -> None:
    """The baseline's scores (baseline.test.*, reference.test.*) and report.html go to the deep run's own MLflow
    run: one run per comparison, so `deepstation runs list` shows both models' scores on one row."""
    from deepstation.track.tracker import log_extra

    metrics = {}
    for name in ("baseline", "reference"):
        for split, values in ((result.get(name) or {}).get("metrics") or {}).items():
            metrics.update({f"{name}.{split}.{k}": v for k, v in values.items() if isinstance(v, (int, float))})
    log_extra(run.dir, metrics, [result["report"], run.dir / "compare.json"])


def _deep_predictions(run, part):
    """Decoded predictions of the first output for `part`, and the time per sample in ms."""
    from deepstation.run import _on
    from deepstation.training.evaluate import run_batches

    features = _on(part, run.plan.device).features
    began = time.perf_counter()
    preds, _ = run_batches(run.model, features, run.plan, run.task.trainer.eval_batch_size)
    ms = (time.perf_counter() - began) / max(len(part), 1) * 1000
    name = run.task.outputs[0].name
    target = part.targets[name]
    level = target["level"].numpy() if isinstance(target, dict) and "level" in target else None
    return decode(run.targets[name], preds[name], level), ms


def _reference(task, data, split: str) -> dict | None:
    """The classical reference where there is one, scored like the others: exponential smoothing for
    forecasting, pocketsphinx's HMM recogniser for transcription."""
    from deepstation.training import metrics

    if data.forecast:
        from deepstation.baselines.series import exponential_smoothing

        found = exponential_smoothing(data.forecast)
        truth = data.forecast["history"][-data.forecast["horizon"]:]
        found["metrics"] = {"test": metrics.forecast(np.asarray(truth), found["prediction"], data.forecast["scale"])}
        return found
    inp, out = task.inputs[0], task.outputs[0]
    if inp.type == "audio" and out.type == "sequence" and len(task.inputs) == 1:
        from deepstation.baselines.audio import pocketsphinx_reference
        from deepstation.errors import DeepstationError

        rows = data.parts[split].rows
        paths = [data.table.base_dir / p for p in data.table.frame[inp.column].iloc[rows]]
        vocabulary = data.targets[out.name].state["vocab"] if out.unit == "word" else None
        try:
            hyps = pocketsphinx_reference(paths, vocabulary, inp.sample_rate)
        except DeepstationError:  # pocketsphinx not installed, or words it cannot spell
            return None
        truth = [str(t) for t in data.raw[split][1][out.name]]
        return {"name": "pocketsphinx", "description": "pocketsphinx HMM recogniser (shipped US English model)"
                + (", grammar of the training words" if vocabulary else ""),
                "prediction": hyps, "metrics": {"test": metrics.sequence(truth, hyps)}}
    return None


def decode(codec, pred: dict, level=None) -> list:
    if "class" in pred:
        return list(codec.decode(pred["class"].numpy()))
    if "tokens" in pred:
        return codec.decode(pred["tokens"])
    return list(codec.decode(pred["value"].numpy(), level))
