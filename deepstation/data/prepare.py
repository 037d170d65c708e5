"""From rows to tensors: read every input and output, drop bad rows, split, fit on train, encode each split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepstation.data.audio import AudioCodec
from deepstation.data.image import ImageCodec
from deepstation.data.series import SPLIT, SeriesCodec, forecast_windows, forecasting_input
from deepstation.data.sources import Table, require_columns
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
    require_columns(table, {col: f for c in [*codecs.values(), *targets.values()] for col, f in c.columns().items()})
    raw_in, bad = {}, np.zeros(len(table.frame), dtype=bool)
    for name, codec in codecs.items():
        raw_in[name], bad_rows = codec.read(table, task.data.on_bad_sample)
        bad |= bad_rows
    raw_out = {name: t.read(table) for name, t in targets.items()}
    keep = np.flatnonzero(~bad)
    if len(keep) == 0:
        raise DeepstationError(f"{table.origin}: no usable rows: every sample failed to decode")

    positions = _split(task, table, keep, raw_out)
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
    return Prepared(parts, codecs, targets, skipped=int(bad.sum()), unseen=unseen, raw=raw,
                    forecast=table.frame.attrs.get("forecast"), table=table)


def _split(task, table: Table, keep: np.ndarray, raw_out: dict) -> dict:
    """Positions (into `keep`) per split: from the split column, or by fractions, stratified by the first
    category output."""
    s = task.data.split
    column = SPLIT if SPLIT in table.frame else s.column
    if column:
        require_columns(table, {column: "data.split.column"})
        names = table.frame[column].astype(str).to_numpy()[keep]
        wrong = sorted(set(names) - {"train", "valid", "test"})
        if wrong:
            raise DeepstationError(f"{table.origin}: column `{column}` (data.split.column) holds {wrong[0]!r}; "
                                   f"expected train, valid or test in every row")
        return {k: np.flatnonzero(names == k) for k in ("train", "valid", "test")}
    strata = next((raw_out[o.name][keep] for o in task.outputs if o.type == "category"), None)
    return split_rows(len(keep), s.valid, s.test, s.seed, strata)


def encode_table(codecs, targets, table: Table, with_targets: bool, task=None, ids=None) -> tuple[Part, dict, Table]:
    """Encode rows with fitted codecs (evaluate and predict). Returns the part, any unseen labels, and the rows
    encoded (for a forecasting task: the windows; `ids`: only these series).
    A forecasting task's rows are windowed first: every origin (evaluate) or the next one (predict)."""
    if task is not None and forecasting_input(task):
        table = forecast_windows(task, table, "all" if with_targets else "predict", ids=ids)
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


def _take(raw, rows):
    return {k: v[rows] for k, v in raw.items()} if isinstance(raw, dict) else raw[rows]
