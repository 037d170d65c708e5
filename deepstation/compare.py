"""The same task two ways: the deep model that learns its features, and the hand-picked-features baseline,
on the same rows and split, with the same metrics, side by side, plus an HTML report."""
from __future__ import annotations

import sys
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
    deep_pred, deep_ms, band = _deep_predictions(run, data.parts[split])
    baseline = run_baseline(run.task, data)
    base_pred = baseline.pop("predictions", None) if baseline else None
    references = _forecast_references(data, split) if data.forecast else _reference(run.task, data, split)
    result = {
        "task": run.task.name, "split": split,
        "deep": {"run": run.id, "run_dir": str(run.dir.resolve()), "metrics": run.metrics,
                 "fit_seconds": run.summary["seconds"], "predict_ms_per_sample": round(deep_ms, 4),
                 "parameters": run.summary["parameters"], "backtest": run.summary.get("backtest"),
                 "description": _describe(run.task)},
        "baseline": baseline,
        "report": str((run.dir / "report.html").resolve()),
    }
    if references:
        result["references"] = [{k: v for k, v in r.items() if k != "prediction"} for r in references]
        # the best one by the task's headline metric, where a single classical figure is wanted (summaries)
        result["reference"] = result["references"][_best_reference(result["references"], run.task)]
    if data.forecast and split == "test":
        _add_owa(result, split)
    result["best"] = winners(result, split, run.task)
    write_report(run, result, data, split, deep_pred, base_pred, references or [], band)
    files.write_json(run.dir / "compare.json", result)
    _track(run, result)
    return result


def _describe(task) -> str:
    text = ", ".join(f"{i.name}: {task.encoder_for(i.name).kind} encoder" for i in task.inputs) + " (features learned)"
    ens = task.model.ensemble
    if ens is not None:
        text += f", an ensemble of {ens.members} combined by the median"
        if ens.losses:
            text += f" (losses {', '.join(ens.losses)}"
            text += f"; lookbacks {', '.join(map(str, ens.lookbacks))})" if ens.lookbacks else ")"
    return text


def _track(run, result: dict) -> None:
    """The baseline's scores (baseline.test.*, reference.test.*) and report.html go to the deep run's own MLflow
    run: one run per comparison, so `deepstation runs list` shows both models' scores on one row."""
    from deepstation.track.tracker import log_extra

    metrics = {}
    found = [("baseline", result.get("baseline"))] + [(f"reference.{r['name']}", r)
                                                      for r in result.get("references") or []]
    for name, entry in found:
        for split, values in ((entry or {}).get("metrics") or {}).items():
            metrics.update({f"{name}.{split}.{k}": v for k, v in values.items() if isinstance(v, (int, float))})
    log_extra(run.dir, metrics, [result["report"], run.dir / "compare.json"])


def _deep_predictions(run, part):
    """Decoded predictions of the first output for `part`, the time per sample in ms, and the prediction interval
    (lower, upper) where the output has quantiles."""
    from deepstation.run import _on
    from deepstation.training.evaluate import interval, run_batches

    features = _on(part, run.plan.device).features
    began = time.perf_counter()
    preds, _ = run_batches(run.model, features, run.plan, run.task.trainer.eval_batch_size)
    ms = (time.perf_counter() - began) / max(len(part), 1) * 1000
    name = run.task.outputs[0].name
    target = part.targets[name]
    level = target["level"].numpy() if isinstance(target, dict) and "level" in target else None
    found = interval(run.targets[name], preds[name], level) if level is not None else None
    return decode(run.targets[name], preds[name], level), ms, None if found is None else found[:2]


def _forecast_references(data, split: str) -> list[dict] | None:
    """Naive, seasonal naive, Naive2, ETS and Theta, each fitted per series on everything before the test horizon
    and scored like the deep model (deepstation.baselines.references)."""
    from deepstation.baselines.references import forecast_references
    from deepstation.training import metrics

    if split != "test":
        return None
    f = data.forecast
    h = f["horizon"]
    truth = np.stack([np.asarray(s[-h:], dtype=np.float64) for s in f["history"]])
    found = forecast_references([np.asarray(s[:-h], dtype=np.float64) for s in f["history"]], h, f["season"])
    for r in found:
        r["metrics"] = {"test": metrics.forecast(truth, r["prediction"], f["scale"])}
    return found


def _add_owa(result: dict, split: str) -> None:
    """OWA against Naive2 (M4's yardstick) for every method scored on the test horizon."""
    from deepstation.training.metrics import owa

    naive2 = next((r["metrics"]["test"] for r in result.get("references") or [] if r["name"] == "naive2"), None)
    if naive2 is None:
        return
    for entry in [result["deep"], result.get("baseline"), *result["references"]]:
        if entry and split in entry.get("metrics", {}):
            entry["metrics"][split]["owa"] = owa(entry["metrics"][split], naive2)


def _best_reference(references: list, task) -> int:
    from deepstation.training.metrics import higher_is_better

    metric = HEADLINE.get(task.outputs[0].type, "loss")
    if task.inputs[0].type == "series" and task.outputs[0].type == "number":
        metric = "mase"
    values = [r["metrics"]["test"].get(metric) for r in references]
    known = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    if not known:
        return 0
    pick = max if higher_is_better(metric) else min
    return pick(known, key=lambda i: values[i])


# the metric each kind of task is judged by in summaries
HEADLINE = {"sequence": "wer", "category": "accuracy", "number": "mape"}


def methods(result: dict, split: str) -> list[tuple[str, dict]]:
    """(label, metrics on the split) of every method compared: deep, hand-picked, then each reference."""
    found = [("deep", result["deep"]["metrics"].get(split, {}))]
    if result.get("baseline") and "metrics" in result["baseline"]:  # a baseline that could not apply is not scored
        found.append(("hand-picked", result["baseline"]["metrics"].get(split, {})))
    for r in result.get("references") or []:
        found.append((r["name"], r["metrics"].get("test", {}) if split == "test" else {}))
    return found


def descriptions(result: dict) -> dict[str, str]:
    """label -> what the method is, one line each, in the order of `methods`."""
    found = {"deep": result["deep"]["description"]}
    if result.get("baseline"):
        found["hand-picked"] = f"hand-picked features: {result['baseline']['description']}"
    found.update({r["name"]: r["description"] for r in result.get("references") or []})
    return found


def winners(result: dict, split: str, task=None) -> dict[str, list[str]]:
    """Per metric, the labels of the methods that score best on it (ties share); no method is favoured. Coverage
    is best nearest the interval's nominal level; the loss is not compared (each method has its own)."""
    from deepstation.training.metrics import higher_is_better

    nominal = None
    out = task.outputs[0] if task is not None else None
    if out is not None and getattr(out, "quantiles", None):
        nominal = out.quantiles[-1] - out.quantiles[0]
    scored = methods(result, split)
    best = {}
    for metric in dict.fromkeys(k for _, m in scored for k in m):
        if metric == "loss":
            continue
        values = {label: m.get(metric) for label, m in scored}
        values = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and np.isfinite(v)}
        if len(values) < 2:
            continue
        if metric.endswith("coverage"):
            if nominal is None:
                continue
            values = {k: -abs(v - nominal) for k, v in values.items()}
            top = max(values.values())
        else:
            top = max(values.values()) if higher_is_better(metric) else min(values.values())
        best[metric] = [k for k, v in values.items() if np.isclose(v, top, rtol=1e-9, atol=1e-12)]
    return best


def losses_of_deep(result: dict) -> list[str]:
    """Plain sentences for every metric the deep model does not win: who wins, and by how much."""
    from deepstation.report import fmt

    split, said = result["split"], []
    scored = dict(methods(result, split))
    for metric, labels in result.get("best", {}).items():
        if "deep" in labels:
            continue
        winner = labels[0]
        deep, other = scored["deep"].get(metric), scored[winner].get(metric)
        if deep is None or other is None:
            continue
        said.append(f"{metric}: {winner} {fmt(other)} beats deep {fmt(deep)}")
    return said


def _reference(task, data, split: str) -> list[dict] | None:
    """The classical references: for transcription pocketsphinx's HMM recogniser, for classifying whole series
    MiniRocket and 1-NN DTW (deepstation.baselines.classify); scored like the others."""
    from deepstation.training import metrics

    inp, out = task.inputs[0], task.outputs[0]
    if inp.type == "series" and not inp.window and out.type == "category" and len(task.inputs) == 1:
        return _series_references(task, data, split)
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
        return [{"name": "pocketsphinx", "description": "pocketsphinx HMM recogniser (shipped US English model)"
                + (", grammar of the training words" if vocabulary else ""),
                "prediction": hyps, "metrics": {"test": metrics.sequence(truth, hyps)}}]
    return None


def _series_references(task, data, split: str) -> list[dict] | None:
    """MiniRocket (and 1-NN DTW on small sets), fitted on the training and validation rows (they need no
    validation) and scored on `split` with the deep model's metrics."""
    from deepstation.baselines.classify import series_references
    from deepstation.baselines.run import score

    inp, out = task.inputs[0].name, task.outputs[0].name
    fit = [data.raw[s] for s in ("train", "valid") if len(data.raw[s][1][out])]
    train_x = [x for inputs, _ in fit for x in _series_of(inputs[inp])]
    train_y = np.concatenate([np.asarray(outputs[out]).astype(str) for _, outputs in fit])
    inputs, outputs = data.raw[split]
    try:
        found = series_references(train_x, train_y, _series_of(inputs[inp]), seed=task.trainer.seed)
    except ValueError as err:  # series they cannot read (missing values): the comparison goes on without them
        print(f"warning: the series references are left out: {err}", file=sys.stderr)
        return None
    codec = data.targets[out]
    for r in found:
        labels = np.asarray(r["prediction"], dtype=object)
        r["prediction"] = list(labels)
        r["metrics"] = {"test": score(codec, outputs[out], labels)}
    return found or None


def _series_of(raw: dict) -> list[np.ndarray]:
    """Each series as read, [length, channels], less the padding that brought them to one length."""
    x, lengths = raw["x"], raw.get("lengths")
    if lengths is None:
        return list(x)
    return [x[i, :n] for i, n in enumerate(lengths)]  # read() pads to the longest series read, never cuts


def decode(codec, pred: dict, level=None) -> list:
    if "class" in pred:
        return list(codec.decode(pred["class"].numpy()))
    if "tokens" in pred:
        return codec.decode(pred["tokens"])
    return list(codec.decode(pred["value"].numpy(), level))
