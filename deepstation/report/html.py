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
                 references: list, band=None) -> None:
    """`band`: the deep model's prediction interval (lower, upper), one row per test row, where it has one."""
    from deepstation.compare import descriptions, losses_of_deep, methods

    deep, base = result["deep"], result["baseline"]
    sections = [f"<h1>{html.escape(run.task.name)}: learned features against hand-picked ones</h1>",
                f"<p class=muted>run <code>{html.escape(run.id)}</code> · {run.summary['device']} "
                f"{run.summary['precision']} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} · rows "
                f"{json.dumps(run.summary['data']['rows'])} · scores on the <b>{split}</b> split</p>"]

    scored = methods(result, split)
    best = result.get("best", {})
    titles = descriptions(result)
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in scored)
    legend = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(titles.get(label, ''))}</li>" for label, _ in scored)
    rows = []
    for metric in dict.fromkeys(k for _, m in scored for k in m):
        cells = "".join(f"<td class={'better' if label in best.get(metric, []) else ''}>{_fmt(m.get(metric))}</td>"
                        for label, m in scored)
        rows.append(f"<tr><td>{html.escape(metric)}</td>{cells}</tr>")
    blank = "<td>-</td>" * (len(scored) - 2)
    rows += [f"<tr><td>training time (s)</td><td>{_fmt(deep['fit_seconds'])}</td>"
             + (f"<td>{_fmt(base['fit_seconds'])}</td>" if base else "") + blank + "</tr>",
             f"<tr><td>inference (ms / sample)</td><td>{_fmt(deep['predict_ms_per_sample'])}</td>"
             + (f"<td>{_fmt(base['predict_ms_per_sample'])}</td>" if base else "") + blank + "</tr>",
             f"<tr><td>size</td><td>{deep['parameters']:,} parameters</td>"
             + (f"<td>{base['size']:,} stored numbers</td>" if base else "") + blank + "</tr>"]
    sections.append(f"<h2>Side by side</h2><p class=muted>bold: the best on each metric, whichever method it is"
                    f"</p><table><tr><th></th>{head}</tr>{''.join(rows)}</table><ul class=muted>{legend}</ul>")
    lost = losses_of_deep(result)
    if lost:
        sections.append("<p><b>Where the deep model loses:</b> " + html.escape("; ".join(lost)) + ".</p>")

    history = run.folder.history()
    if history:
        sections.append(f"<h2>Learning curves</h2><img src='{plots.learning_curves(history, run.task.trainer.monitor)}'>")
    sections += _examples(run, data, split, deep_pred, base_pred)
    if data.forecast and split == "test":
        sections.append(_forecast(run, data, deep_pred, base_pred, references, result, band))
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


SERIES_SHOWN = 4


def _forecast(run, data, deep_pred, base_pred, references, result, band) -> str:
    """The held-out horizon of the first few series: history, truth, the deep forecast with its interval, the
    hand-picked one and the best classical reference."""
    f = data.forecast
    h = f["horizon"]
    codec = run.targets[run.task.outputs[0].name]
    best = result.get("reference", {}).get("name")
    images = []
    for i, history in enumerate(f["history"][:SERIES_SHOWN]):
        history = np.asarray(history)
        shown = min(len(history) - h, 4 * h)  # enough of the past to see the pattern
        lines = {"deep": np.asarray(deep_pred[i])}
        if base_pred is not None:
            level = data.raw["test"][1][run.task.outputs[0].name][i:i + 1, :2]
            lines["hand-picked"] = codec.absolute(np.column_stack([level, np.asarray(base_pred[i])[None]]))[0]
        for r in references:
            if r["name"] == best:
                lines[r["name"]] = r["prediction"][i]
        interval = None if band is None else (band[0][i], band[1][i])
        dates = f["dates"][i]
        labels = None if dates is None else [str(d.date()) for d in dates][-(shown + h):]
        title = None if f.get("ids") is None else f"series {f['ids'][i]}"
        images.append(f"<img src='{plots.forecast(history[-(shown + h):-h], history[-h:], lines, labels, interval, title)}'>")
    more = len(f["history"]) - SERIES_SHOWN
    note = f"<p class=muted>{more} more series scored above, not drawn.</p>" if more > 0 else ""
    return f"<h2>Forecast of the held-out horizon</h2>{''.join(images)}{note}"
