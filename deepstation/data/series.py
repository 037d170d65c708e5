"""Series inputs. Two shapes of data:

- forecasting (`window` set): rows are time steps of one series. `forecast_windows` turns them into samples:
  the `window` values before an origin, and the `horizon` values after it as the target. The last `horizon`
  points are the test set (one origin), the `horizon` points before them the validation set, and every
  training target ends before those (no leakage). Each window is taken relative to its own level (its mean,
  after the optional log), so a model trained on 1950s traffic can forecast the 1960s.
- classification and the like (`window` left out): each row holds a whole series (an array).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from deepstation.data.table import numeric_column
from deepstation.errors import DeepstationError

SPLIT = "__split__"  # the split column that forecast_windows writes
LEVEL = "__level__"
ORIGIN = "__origin__"


def forecasting_input(task):
    return next((i for i in task.inputs if i.type == "series" and i.window), None)


def forecast_windows(task, table, mode: str = "split", cut: int = 0):
    """The windowed samples as a new table (same origin and folder), the forecasting facts in frame.attrs.

    mode: "split" (train/valid/test origins as above), "all" (every origin with a full target: scoring other
    data), "predict" (one origin after the last point, no target)."""
    for_prediction = mode == "predict"
    if cut:  # a rolling-origin fold: the series as it stood `cut` steps before its end
        from deepstation.data.sources import Table as _Table

        table = _Table(table.frame.iloc[:len(table.frame) - cut].reset_index(drop=True), table.origin, table.base_dir)
    from deepstation.data.sources import Table, require_columns

    inp = forecasting_input(task)
    outs = [o for o in task.outputs if o.type == "number"]
    if len(task.inputs) != 1 or len(task.outputs) != 1 or not outs:
        raise DeepstationError("inputs/outputs: a forecasting task (a series input with `window`) has that one input "
                               "and one number output with a `horizon`")
    out = outs[0]
    frame = table.frame
    require_columns(table, {**{c: f"inputs.{inp.name}.columns" for c in inp.columns},
                            **({} if for_prediction else {out.column: f"outputs.{out.name}.column"}),
                            **({inp.date: f"inputs.{inp.name}.date"} if inp.date else {})})
    dates = _dates(frame, inp.date, table.origin) if inp.date else None
    values = np.stack([numeric_column(frame, c, table.origin, f"inputs.{inp.name}.columns") for c in inp.columns], 1)
    target = values[:, inp.columns.index(out.column)] if out.column in inp.columns else (
        None if for_prediction else numeric_column(frame, out.column, table.origin, f"outputs.{out.name}.column"))
    if inp.transform == "log":
        values, target = _log(values, table.origin, inp.columns), None if target is None else _log(
            target[:, None], table.origin, [out.column])[:, 0]

    w, h, n = inp.window, out.horizon, len(frame)
    valid = 0 if for_prediction or task.data.split.valid == 0 else h
    needed = w + (0 if for_prediction else h if mode == "all" else h + valid + h)  # a training sample, valid, test
    if n < needed:
        raise DeepstationError(f"{table.origin}: the series has {n} points; window {w} and horizon {h} need at least "
                               f"{needed} (a training sample, {valid} for validation, {h} for test); lower "
                               f"inputs.{inp.name}.window or outputs.{out.name}.horizon, or add data")
    if for_prediction:
        origins, splits = [n], ["predict"]
    elif mode == "all":
        origins = list(range(w, n - h + 1))
        splits = ["test"] * len(origins)
    else:
        last_train = n - h - valid - h  # the last origin whose target ends before the held-out points
        origins = list(range(w, last_train + 1)) + ([n - h - valid] if valid else []) + [n - h]
        splits = ["train"] * (last_train + 1 - w) + (["valid"] if valid else []) + ["test"]
    rows = {inp.name: [], out.column: [], LEVEL: [], SPLIT: splits, ORIGIN: []}
    for t in origins:
        window = values[t - w:t]
        level = window.mean(axis=0)
        rows[inp.name].append((window - level).astype(np.float32))
        k = inp.columns.index(out.column) if out.column in inp.columns else None
        target_level = float(level[k]) if k is not None else float(target[t - w:t].mean())
        rows[LEVEL].append(target_level)
        rows[out.column].append(None if t >= n else (target[t:t + h] - target_level).astype(np.float32))
        rows[ORIGIN].append(None if dates is None else (_next_date(dates) if t >= n else dates.iloc[t]))
    samples = pd.DataFrame(rows)
    season = _season(dates)
    history = target if target is not None else values[:, 0]
    train_zone = np.exp(history[:n - h - valid]) if inp.transform == "log" else history[:n - h - valid]
    samples.attrs["forecast"] = {"log": inp.transform == "log", "horizon": h, "season": season,
                                 "history": (np.exp(history) if inp.transform == "log" else history).tolist(),
                                 "dates": None if dates is None else [str(d.date()) for d in dates],
                                 # MASE's yardstick: the seasonal naive forecast's mean error on the training zone
                                 "scale": float(np.mean(np.abs(train_zone[season:] - train_zone[:-season])))
                                 if len(train_zone) > season else None}
    return Table(samples, table.origin, table.base_dir)


def _season(dates) -> int:
    """Steps per year for monthly (12) and quarterly (4) data, else 1."""
    if dates is None or len(dates) < 3:
        return 1
    days = float(np.median(np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(float)))
    return 12 if 27 <= days <= 32 else 4 if 88 <= days <= 93 else 52 if 6 <= days <= 8 else 1


def _next_date(dates):
    freq = pd.infer_freq(dates.iloc[-min(len(dates), 8):])
    if freq:
        return dates.iloc[-1] + pd.tseries.frequencies.to_offset(freq)
    return dates.iloc[-1] + (dates.iloc[-1] - dates.iloc[-2])


def _dates(frame, column, origin) -> pd.Series:
    parsed = pd.to_datetime(frame[column], errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DeepstationError(f"{origin}: row {bad[0] + 1}, column `{column}`: {frame[column].iloc[bad[0]]!r} is not "
                               f"a date; use a form like 2024-01-31")
    order = np.flatnonzero(np.diff(parsed.to_numpy()) <= np.timedelta64(0))
    if len(order):
        row = order[0] + 2
        what = "repeats" if parsed.iloc[row - 1] == parsed.iloc[row - 2] else "comes before"
        raise DeepstationError(f"{origin}: row {row}, column `{column}`: {parsed.iloc[row - 1].date()} {what} the "
                               f"row above; sort the rows by date and drop duplicates")
    return parsed


def _log(values: np.ndarray, origin, columns) -> np.ndarray:
    bad = np.argwhere(values <= 0)
    if len(bad):
        row, col = bad[0]
        raise DeepstationError(f"{origin}: row {row + 1}, column `{columns[col]}`: {values[row, col]} cannot be "
                               f"logged (transform: log needs values above 0); use transform: none")
    return np.log(values)


class SeriesCodec:
    """Rows holding arrays ([length] or [length, channels]) -> x [N, length, channels], standardised per channel on
    the training rows; with `calendar`, month-of-year and day-of-week of the origin as a second tensor."""

    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state

    def columns(self) -> dict[str, str]:
        # forecasting tables are windowed first: the input's own name is then its column
        return {self.spec.name if self.spec.window else c: f"inputs.{self.spec.name}.columns" for c in self.spec.columns}

    def read(self, table, on_bad_sample="error"):
        if self.spec.window:
            x = np.stack(table.frame[self.spec.name].tolist()).astype(np.float32)
        else:
            x = self._arrays(table)
        cal = np.zeros((len(x), 0), dtype=np.float32)
        if self.spec.calendar and ORIGIN in table.frame:
            origin = pd.to_datetime(table.frame[ORIGIN])
            month = origin.dt.month.to_numpy() - 1
            cal = np.concatenate([np.eye(12, dtype=np.float32)[month],
                                  np.eye(7, dtype=np.float32)[origin.dt.dayofweek.to_numpy()]], axis=1)
        return {"x": x, "cal": cal}, np.zeros(len(x), dtype=bool)

    def _arrays(self, table) -> np.ndarray:
        columns = self.spec.columns
        if len(columns) == 1 and table.frame[columns[0]].dtype == object:
            arrays = [np.asarray(v, dtype=np.float32) for v in table.frame[columns[0]]]
            arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
            lengths = {a.shape for a in arrays}
            if len(lengths) > 1:
                raise DeepstationError(f"{table.origin}: column `{columns[0]}` holds series of different shapes "
                                       f"({', '.join(map(str, sorted(lengths)[:3]))}); pad or cut them to one length")
            return np.stack(arrays)
        # one row = one series spread over columns (t1, t2, ...): a univariate series per row
        values = np.stack([numeric_column(table.frame, c, table.origin, f"inputs.{self.spec.name}.columns")
                           for c in columns], 1)
        return values[:, :, None].astype(np.float32)

    def fit(self, raw) -> None:
        x = raw["x"]
        std = x.std(axis=(0, 1)) if len(x) else np.ones(x.shape[2])
        self.state = {"length": int(x.shape[1]), "channels": int(x.shape[2]), "calendar": int(raw["cal"].shape[1]),
                      "mean": x.mean(axis=(0, 1)).tolist() if len(x) else [0.0] * x.shape[2],
                      "std": np.where(std > 0, std, 1.0).tolist()}

    def encode(self, raw) -> dict:
        import torch

        x = (raw["x"] - np.asarray(self.state["mean"], dtype=np.float32)) / np.asarray(self.state["std"],
                                                                                          dtype=np.float32)
        if x.shape[1] != self.state["length"]:
            raise DeepstationError(f"inputs.{self.spec.name}: series of length {x.shape[1]}, but the model was "
                                   f"trained on length {self.state['length']}")
        return {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), "cal": torch.from_numpy(raw["cal"])}

    def shape(self) -> dict:
        return {"type": "series", "length": self.state["length"], "channels": self.state["channels"],
                "calendar": self.state["calendar"]}
