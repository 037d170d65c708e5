"""report.html: the deep model beside the baseline, learning curves, and what each predicted."""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import numpy as np

from deepstation import files
from deepstation.report import columns, fmt as _fmt, not_applicable, plots, scored

SAMPLES = 8  # images drawn
ROWS = 12  # rows of the examples table

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.better{font-weight:bold;color:#063}img{max-width:100%}
.wrong{color:#a00}.na{color:#777;text-align:center}
.muted{color:#777;font-size:90%}code{background:#f4f4f4;padding:1px 4px}"""


def write_report(run, result: dict, data, split: str, deep_pred: list, base_pred: list | None,
                 references: list, band=None) -> None:
    """`band`: the deep model's prediction interval (lower, upper), one row per test row, where it has one."""
    from deepstation.compare import losses_of_deep

    sections = [f"<h1>{html.escape(run.task.name)}: learned features against hand-picked ones</h1>",
                f"<p class=muted>run <code>{html.escape(run.id)}</code> · {run.summary['device']} "
                f"{run.summary['precision']} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} · rows "
                f"{json.dumps(run.summary['data']['rows'])} · scores on the <b>{split}</b> split</p>",
                side_by_side(result, split)]
    lost = losses_of_deep(scored(result))
    if lost:
        sections.append("<p><b>Where the deep model loses:</b> " + html.escape("; ".join(lost)) + ".</p>")

    history = run.folder.history()
    if history:
        sections.append(f"<h2>Learning curves</h2><img src='{plots.learning_curves(history, run.task.trainer.monitor)}'>")
    if not_applicable(result):
        base_pred = None
    sections += _examples(run, data, split, deep_pred, base_pred)
    if data.forecast and split == "test":
        sections.append(_forecast(run, data, deep_pred, base_pred, references, result, band))
    page = f"<!doctype html><meta charset=utf-8><title>{html.escape(run.task.name)} report</title>" \
           f"<style>{STYLE}</style>{''.join(sections)}"
    files.write_text(run.dir / "report.html", page)


def side_by_side(result: dict, split: str) -> str:
    """Metrics as rows, methods as columns; in bold the winners compare.winners found (result["best"]), whichever
    method they are; a baseline that does not apply shows why, in place of scores."""
    from deepstation.compare import descriptions

    deep, base = result["deep"], result.get("baseline")
    shown = columns(result, split)
    best = result.get("best", {})
    reason = not_applicable(result)
    titles = descriptions(result)
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in shown)
    legend = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(titles.get(label, ''))}"
                     + (f" (not applicable: {html.escape(reason)})" if m is None else "") + "</li>"
                     for label, m in shown)
    metrics = list(dict.fromkeys(k for _, m in shown for k in m or {}))
    rows = []
    for n, metric in enumerate(metrics):
        cells = ""
        for label, m in shown:
            if m is None and n == 0:  # one cell down the whole column, said once
                cells += f"<td class=na rowspan={len(metrics)}>not applicable: {html.escape(reason)}</td>"
            elif m is None:
                continue
            else:
                cells += f"<td class={'better' if label in best.get(metric, []) else ''}>{_fmt(m.get(metric))}</td>"
        rows.append(f"<tr><td>{html.escape(metric)}</td>{cells}</tr>")
    if not metrics and reason:
        rows.append("<tr><td></td>" + "".join(f"<td class=na>not applicable: {html.escape(reason)}</td>"
                                               if m is None else "<td>-</td>" for _, m in shown) + "</tr>")
    has_base = bool(base) and not reason
    blank = "<td>-</td>" * (len(shown) - 1 - has_base)
    rows += [f"<tr><td>training time (s)</td><td>{_fmt(deep['fit_seconds'])}</td>"
             + (f"<td>{_fmt(base['fit_seconds'])}</td>" if has_base else "") + blank + "</tr>",
             f"<tr><td>inference (ms / sample)</td><td>{_fmt(deep['predict_ms_per_sample'])}</td>"
             + (f"<td>{_fmt(base['predict_ms_per_sample'])}</td>" if has_base else "") + blank + "</tr>",
             f"<tr><td>size</td><td>{deep['parameters']:,} parameters</td>"
             + (f"<td>{base['size']:,} stored numbers</td>" if has_base else "") + blank + "</tr>"]
    return (f"<h2>Side by side</h2><p class=muted>bold: the best on each metric, whichever method it is</p>"
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table><ul class=muted>{legend}</ul>")


def _examples(run, data, split: str, deep_pred: list, base_pred: list | None) -> list[str]:
    """What the models predicted on a few rows of the split, mistakes first: a row deep gets wrong, then one only
    the baseline gets wrong, in turn, then rows both get right (for numbers: the largest errors first)."""
    task = run.task
    inp, out = task.inputs[0], task.outputs[0]
    raw_in, raw_out = data.raw[split]
    true = list(raw_out[out.name])
    found = []
    if true and not data.forecast:  # a forecast's held-out horizon is drawn below instead
        order, deep_wrong, base_wrong = mistakes_first(true, deep_pred, base_pred, out.type)
        drawn = inp.type == "image" and len(task.inputs) == 1
        shown = order[:SAMPLES if drawn else ROWS]
        said = _said(len(shown), len(true), split, deep_wrong, base_wrong, base_pred, out.type)
        if drawn:
            mark = {True: " (wrong)", False: ""}
            captions = [f"true: {true[i]}\ndeep: {deep_pred[i]}{mark[i in deep_wrong]}"
                        + (f"\nhand-picked: {base_pred[i]}{mark[i in base_wrong]}" if base_pred is not None else "")
                        for i in shown]
            images = np.asarray(raw_in[inp.name])[np.asarray(shown, dtype=int)]
            found.append(f"<h2>Examples</h2>{said}<img src='{plots.image_samples(images, captions)}'>")
        else:
            head = "<th>true</th><th>deep</th>" + ("<th>hand-picked</th>" if base_pred is not None else "")
            rows = ""
            for i in shown:
                rows += f"<tr><td>{_text(true[i])}</td>" + _cell(deep_pred[i], i in deep_wrong)
                rows += (_cell(base_pred[i], i in base_wrong) if base_pred is not None else "") + "</tr>"
            found.append(f"<h2>Examples</h2>{said}<table><tr>{head}</tr>{rows}</table>")
    if out.type == "category":
        labels = run.targets[out.name].state["labels"]
        found.append(f"<h2>Confusion matrix (deep)</h2><img src='{plots.confusion(true, deep_pred, labels)}'>")
    return found


def mistakes_first(true: list, deep: list, base: list | None, kind: str) -> tuple[list[int], set, set]:
    """Every row's index, the ones to look at first: for categories and sequences, a row deep gets wrong and a row
    only the baseline gets wrong in turn, then the right ones, each group in the split's order; for numbers, the
    largest error of either model first. Also the rows deep gets wrong, and those the baseline gets wrong."""
    rows = range(len(true))
    if kind == "number":
        error = [max(_error(true[i], deep[i]), _error(true[i], base[i]) if base is not None else 0.0) for i in rows]
        return sorted(rows, key=lambda i: -error[i]), set(), set()
    deep_wrong = {i for i in rows if not _same(true[i], deep[i], kind)}
    base_wrong = {i for i in rows if base is not None and not _same(true[i], base[i], kind)}
    first = [i for i in rows if i in deep_wrong]
    second = [i for i in rows if i in base_wrong and i not in deep_wrong]
    taken = [i for pair in zip(first, second) for i in pair]
    taken += first[len(second):] + second[len(first):]
    return taken + [i for i in rows if i not in deep_wrong and i not in base_wrong], deep_wrong, base_wrong


def _same(true, pred, kind: str) -> bool:
    if kind == "sequence":  # as exact match counts it: the same words
        return str(true).split() == str(pred).split()
    try:
        if bool(true == pred):
            return True
    except (TypeError, ValueError):
        pass
    return str(true) == str(pred)


def _error(true, pred) -> float:
    try:
        found = np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64))
    except (TypeError, ValueError):
        return 0.0
    return float(np.nanmax(found)) if found.size and not np.isnan(found).all() else 0.0


def _said(shown: int, total: int, split: str, deep_wrong: set, base_wrong: set, base_pred, kind: str) -> str:
    if kind == "number":
        return f"<p class=muted>{shown} of {total} {split} rows, the largest errors first</p>"
    text = f"{shown} of {total} {split} rows, mistakes first: deep gets {len(deep_wrong)} wrong"
    if base_pred is not None:
        text += f", hand-picked {len(base_wrong)}"
    return f"<p class=muted>{text}; wrong predictions in red</p>"


def _text(value) -> str:
    return html.escape(_fmt(float(value)) if isinstance(value, (float, np.floating)) else str(value))


def _cell(value, wrong: bool) -> str:
    return f"<td class=wrong>{_text(value)}</td>" if wrong else f"<td>{_text(value)}</td>"


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
