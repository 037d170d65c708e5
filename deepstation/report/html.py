"""report.html: the deep model beside the baseline, learning curves, and what each predicted."""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import numpy as np

from deepstation import files
from deepstation.report import fmt as _fmt, plots

SAMPLES = 8

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.better{font-weight:bold;color:#063}img{max-width:100%}
.muted{color:#777;font-size:90%}code{background:#f4f4f4;padding:1px 4px}"""


def write_report(run, result: dict, data, split: str, deep_pred: list, base_pred: list | None,
                 reference: dict | None = None) -> None:
    from deepstation.training.metrics import higher_is_better

    deep, base = result["deep"], result["baseline"]
    sections = [f"<h1>{html.escape(run.task.name)}: learned features against hand-picked ones</h1>",
                f"<p class=muted>run <code>{html.escape(run.id)}</code> · {run.summary['device']} "
                f"{run.summary['precision']} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} · rows "
                f"{json.dumps(run.summary['data']['rows'])} · scores on the <b>{split}</b> split</p>"]

    rows = []
    for metric, value in deep["metrics"][split].items():
        other = base["metrics"].get(split, {}).get(metric) if base else None
        better = _better(metric, value, other, higher_is_better(metric))
        rows.append((metric, _fmt(value), _fmt(other), better))
    rows += [("training time (s)", _fmt(deep["fit_seconds"]), _fmt(base and base["fit_seconds"]), None),
             ("inference (ms / sample)", _fmt(deep["predict_ms_per_sample"]),
              _fmt(base and base["predict_ms_per_sample"]), None),
             ("size", f"{deep['parameters']:,} parameters", f"{base['size']:,} stored numbers" if base else "-", None)]
    ref = reference["metrics"]["test"] if reference else {}
    table = "".join(f"<tr><td>{html.escape(m)}</td><td class={'better' if b == 'deep' else ''}>{d}</td>"
                    f"<td class={'better' if b == 'base' else ''}>{h}</td>"
                    + (f"<td>{_fmt(ref.get(m))}</td>" if reference else "") + "</tr>" for m, d, h, b in rows)
    sections.append(f"<h2>Side by side</h2><table><tr><th></th><th>deep: {html.escape(deep['description'])}</th>"
                    f"<th>hand-picked: {html.escape(base['description']) if base else 'no baseline for this task'}"
                    f"</th>" + (f"<th>classical reference: {html.escape(reference['description'])}</th>"
                                if reference else "") + f"</tr>{table}</table>")

    history = run.folder.history()
    if history:
        sections.append(f"<h2>Learning curves</h2><img src='{plots.learning_curves(history, run.task.trainer.monitor)}'>")
    sections += _examples(run, data, split, deep_pred, base_pred)
    if data.forecast and split == "test":
        sections.append(_forecast(run, data, deep_pred, base_pred, reference))
    page = f"<!doctype html><meta charset=utf-8><title>{html.escape(run.task.name)} report</title>" \
           f"<style>{STYLE}</style>{''.join(sections)}"
    files.write_text(run.dir / "report.html", page)


def _examples(run, data, split: str, deep_pred: list, base_pred: list | None) -> list[str]:
    task = run.task
    inp, out = task.inputs[0], task.outputs[0]
    raw_in, raw_out = data.raw[split]
    true = list(raw_out[out.name])
    base_pred = base_pred if base_pred is not None else [None] * len(true)
    found = []
    if inp.type == "image" and len(task.inputs) == 1:
        n = min(SAMPLES, len(true))
        captions = [f"true: {true[i]}\ndeep: {deep_pred[i]}" + (f"\nhand-picked: {base_pred[i]}"
                                                                 if base_pred[i] is not None else "")
                    for i in range(n)]
        found.append(f"<h2>Examples</h2><img src='{plots.image_samples(raw_in[inp.name][:n], captions)}'>")
    elif out.type == "sequence":
        rows = "".join(f"<tr><td>{html.escape(str(true[i]))}</td><td>{html.escape(str(deep_pred[i]))}</td>"
                       f"<td>{html.escape(str(base_pred[i]))}</td></tr>" for i in range(min(12, len(true))))
        found.append(f"<h2>Examples</h2><table><tr><th>true</th><th>deep</th><th>hand-picked</th></tr>{rows}</table>")
    if out.type == "category":
        labels = run.targets[out.name].state["labels"]
        found.append(f"<h2>Confusion matrix (deep)</h2><img src='{plots.confusion(true, deep_pred, labels)}'>")
    return found


def _forecast(run, data, deep_pred, base_pred, reference) -> str:
    f = data.forecast
    history, h = np.asarray(f["history"]), f["horizon"]
    shown = min(len(history) - h, 4 * h)  # enough of the past to see the pattern
    lines = {"deep": np.asarray(deep_pred[-1])}
    if base_pred is not None:
        codec = run.targets[run.task.outputs[0].name]
        level = data.raw["test"][1][run.task.outputs[0].name][-1:, :1]
        lines["hand-picked"] = codec.absolute(np.column_stack([level, np.asarray(base_pred[-1])[None]]))[0]
    if reference:
        lines[reference["name"]] = reference["prediction"]
    labels = f["dates"][-(shown + h):] if f.get("dates") else None
    image = plots.forecast(history[-(shown + h):-h], history[-h:], lines, labels)
    return f"<h2>Forecast of the held-out horizon</h2><img src='{image}'>"


def _better(metric, deep, base, higher: bool):
    if deep is None or base is None or np.isnan(deep) or np.isnan(base) or deep == base:
        return None
    return "deep" if (deep > base) == higher else "base"
