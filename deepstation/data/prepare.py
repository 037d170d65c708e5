"""From rows to tensors: read every input and output, drop bad rows, split, fit on train, encode each split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepstation.data.audio import AudioCodec
from deepstation.data.image import ImageCodec
from deepstation.data.series import (SPLIT, SeriesCodec, forecast_windows, forecasting_input, gather_series, long_inputs,
                                     prediction_windows)
from deepstation.data.sources import GIVEN_SPLIT, Table, require_columns
from deepstation.data.table import TableCodec
from deepstation.data.split import split_rows
from deepstation.data.targets import CategoryTarget, NumberTarget, SequenceTarget
from deepstation.errors import DeepstationError

# input type -> codec; output type -> target codec. A new modality is a new module and one line here.
INPUT_CODECS = {"table": TableCodec, "image": ImageCodec, "audio": AudioCodec, "series": SeriesCodec}
TARGET_CODECS = {"category": CategoryTarget, "number": NumberTarget, "sequence": SequenceTarget}


@dataclass
class Part:
    """One split's tensors. `rows` are the source row positions, for messages and predictions."""

    features: dict
    targets: dict
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Prepared:
    parts: dict[str, Part]
    codecs: dict
    targets: dict
    skipped: int = 0
    unseen: dict = field(default_factory=dict)  # "valid/label" -> labels never seen in training
    raw: dict = field(default_factory=dict)     # split -> ({input: raw values}, {output: raw values}), for baselines
    forecast: dict | None = None                # a forecasting task's series and horizon (deepstation.data.series)
    table: Table | None = None                  # the rows as read (after windowing), for references and reports
    notes: list = field(default_factory=list)   # what was done to the data that the summary should say

    def state(self) -> dict:
        return state_of(self.codecs, self.targets)


def make_codecs(task, state: dict | None = None):
    state = state or {"inputs": {}, "outputs": {}}
    codecs = {i.name: INPUT_CODECS[i.type](i, state["inputs"].get(i.name)) for i in task.inputs}
    targets = {o.name: TARGET_CODECS[o.type](o, state["outputs"].get(o.name)) for o in task.outputs}
    return codecs, targets


def state_of(codecs, targets) -> dict:
    return {"inputs": {n: c.state for n, c in codecs.items()}, "outputs": {n: t.state for n, t in targets.items()}}


def prepare(task, table: Table, state: dict | None = None, cut: int = 0) -> Prepared:
    """Split the rows and encode each part. With `state` (a finished run's), the codecs are already fitted.
    `cut`: for a forecasting backtest fold, leave out the series' last `cut` points."""
    codecs, targets = make_codecs(task, state)
    if forecasting_input(task):
        table = forecast_windows(task, table, cut=cut)
    elif long_inputs(task):
        table = gather_series(task, table)
    require_columns(table, {col: f for c in [*codecs.values(), *targets.values()] for col, f in c.columns().items()})
    raw_in, bad = {}, np.zeros(len(table.frame), dtype=bool)
    for name, codec in codecs.items():
        raw_in[name], bad_rows = codec.read(table, task.data.on_bad_sample)
        bad |= bad_rows
    raw_out = {name: t.read(table) for name, t in targets.items()}
    keep = np.flatnonzero(~bad)
    if len(keep) == 0:
        raise DeepstationError(f"{table.origin}: no usable rows: every sample failed to decode")

    positions, notes = _split(task, table, keep, raw_out)
    if len(positions["train"]) == 0:
        raise DeepstationError(f"{table.origin}: {len(keep)} row(s) leave none for training after the split; "
                               f"add rows or lower data.split.valid and data.split.test")

    if state is None:
        train_rows = keep[positions["train"]]
        for name, codec in codecs.items():
            codec.fit(_take(raw_in[name], train_rows))
        for name, target in targets.items():
            target.fit(raw_out[name][train_rows])

    parts, unseen, raw = {}, {}, {}
    for split, pos in positions.items():
        rows = keep[pos]
        raw[split] = ({n: _take(raw_in[n], rows) for n in codecs}, {n: raw_out[n][rows] for n in targets})
        parts[split] = Part(features={n: c.encode(_take(raw_in[n], rows)) for n, c in codecs.items()},
                            targets={n: t.encode(raw_out[n][rows]) for n, t in targets.items()}, rows=rows)
        for name, target in targets.items():
            labels = target.unseen(raw_out[name][rows])
            if labels:
                unseen[f"{split}/{name}"] = labels
    notes += [note for codec in codecs.values() for note in getattr(codec, "notes", lambda: [])()]
    return Prepared(parts, codecs, targets, skipped=int(bad.sum()), unseen=unseen, raw=raw,
                    forecast=table.frame.attrs.get("forecast"), table=table, notes=notes)


def _split(task, table: Table, keep: np.ndarray, raw_out: dict) -> tuple[dict, list[str]]:
    """Positions (into `keep`) per split, and a note of what was done: from the split column (or the files given
    per split), or by fractions, stratified by the first category output. A given split without validation rows
    has `data.split.valid` of its training rows carved out, stratified alike."""
    s = task.data.split
    strata = next((raw_out[o.name][keep] for o in task.outputs if o.type == "category"), None)
    column = next((c for c in (SPLIT, GIVEN_SPLIT) if c in table.frame), s.column)
    if not column:
        return split_rows(len(keep), s.valid, s.test, s.seed, strata), []
    require_columns(table, {column: "data.split.column"})
    names = table.frame[column].astype(str).to_numpy()[keep]
    wrong = sorted(set(names) - {"train", "valid", "test"})
    if wrong:
        raise DeepstationError(f"{table.origin}: column `{column}` (data.split.column) holds {wrong[0]!r}; "
                               f"expected train, valid or test in every row")
    found = {k: np.flatnonzero(names == k) for k in ("train", "valid", "test")}
    if len(found["valid"]) or column == SPLIT or s.valid == 0:
        return found, []
    train = found["train"]
    carved = split_rows(len(train), s.valid, 0.0, s.seed, None if strata is None else strata[train])
    found["train"], found["valid"] = train[carved["train"]], train[carved["valid"]]
    given = "data.source's files" if column == GIVEN_SPLIT else f"data.split.column `{column}`"
    return found, [f"{given} give no validation rows: {len(found['valid'])} of the {len(train)} training rows "
                   f"(data.split.valid {s.valid:g}{', stratified' if strata is not None else ''}) were held out "
                   f"for validation"]


def encode_table(codecs, targets, table: Table, with_targets: bool, task=None, ids=None) -> tuple[Part, dict, Table]:
    """Encode rows with fitted codecs (evaluate and predict). Returns the part, any unseen labels, and the rows
    encoded (for a forecasting task: the windows; `ids`: only these series).
    A forecasting task's rows are windowed first: every origin (evaluate) or the next one (predict)."""
    if task is not None and forecasting_input(task):
        table = forecast_windows(task, table, "all" if with_targets else "predict", ids=ids)
    elif task is not None and long_inputs(task):
        table = gather_series(task, table)
    needed = {col: f for c in codecs.values() for col, f in c.columns().items()}
    if with_targets:
        needed.update({col: f for t in targets.values() for col, f in t.columns().items()})
    require_columns(table, needed)
    features = {}
    for name, codec in codecs.items():
        raw, _ = codec.read(table, "error")
        features[name] = codec.encode(raw)
    outs, unseen = {}, {}
    if with_targets:
        for name, target in targets.items():
            raw = target.read(table)
            outs[name] = target.encode(raw)
            labels = target.unseen(raw)
            if labels:
                unseen[name] = labels
    return Part(features, outs, np.arange(len(table.frame))), unseen, table


def encode_tables(codecs, targets, tables: list, task, ids=None) -> tuple[Part, list, list[slice]]:
    """encode_table (no targets) for several tables at once, each read as if alone, so that one forward pass
    serves several requests. Rows that are time steps (a forecast's history, series in long format) are gathered
    into series table by table (a table without an id column is one series); other rows, from tables of one folder,
    are encoded together. Returns the part of every row, the rows encoded per table (for a forecast: the windows of
    all tables, a row per series) and each table's rows of the part, in order."""
    if len(tables) == 1:
        part, _, encoded = encode_table(codecs, targets, tables[0], False, task, ids)
        return part, [encoded], [slice(0, len(part))]
    if not any(i.type == "series" and (i.window or i.id) for i in task.inputs):
        import pandas as pd

        whole = Table(pd.concat([t.frame for t in tables], ignore_index=True), tables[0].origin, tables[0].base_dir)
        part, _, _ = encode_table(codecs, targets, whole, False, task, ids)
        return part, tables, _slices([len(t.frame) for t in tables])
    if forecasting_input(task):  # the windows of every table in one frame: its rows are series, the tables' in order
        windows, counts = prediction_windows(task, tables, ids)
        part, _, _ = encode_table(codecs, targets, windows, False)
        return part, [windows] * len(tables), _slices(counts)
    import torch

    parts, encoded = zip(*[encode_table(codecs, targets, t, False, task, ids)[::2] for t in tables])
    features = {name: {key: torch.cat([p.features[name][key] for p in parts]) for key in first}
                for name, first in parts[0].features.items()}
    bounds = _slices([len(p) for p in parts])
    return Part(features, {}, np.arange(bounds[-1].stop)), list(encoded), bounds


def _slices(counts: list[int]) -> list[slice]:
    ends = np.cumsum(counts).tolist()
    return [slice(end - n, end) for n, end in zip(counts, ends)]


def _take(raw, rows):
    return {k: v[rows] for k, v in raw.items()} if isinstance(raw, dict) else raw[rows]
