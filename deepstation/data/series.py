"""Series inputs. Two shapes of data:

- forecasting (`window` set): rows are time steps of one series, or with `id` of many (long format: one row per
  series and step, ordered by `date` or `order` within each series). `forecast_windows` turns them into samples:
  the `window` values before an origin, and the `horizon` values after it as the target. The last `horizon`
  points of every series are the test set (one origin each), the `horizon` points before them the validation set
  (the M4 convention), and every training target ends before those (no leakage). Each window is taken relative
  to its own level (its mean, after the optional log): by difference, or for many series by ratio, so that one
  global model sees series of any size on one scale.
- classification and the like (`window` left out): each row holds a whole series (an array, or a value per
  column of a wide table), or with `id` the rows are time steps (long format) and `gather_series` makes each id's
  rows one sample. Series of different lengths are padded or resampled to one length (`unequal`).
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from deepstation.data.table import numeric_column
from deepstation.errors import DeepstationError

SPLIT = "__split__"  # the split column that forecast_windows writes
LEVEL = "__level__"
ORIGIN = "__origin__"  # the date of the first forecast step, where dates are known
SERIES = "__series__"  # the series' id (None for a single series)
SCALE = "__scale__"    # the series' in-sample seasonal naive error: MASE's yardstick
NS_FIRST, NS_LAST = np.datetime64("1677-09-22", "us"), np.datetime64("2262-04-11", "us")  # pandas' usual dates


def forecasting_input(task):
    return next((i for i in task.inputs if i.type == "series" and i.window), None)


def scaling_of(inp) -> str:
    if inp.scaling != "auto":
        return inp.scaling
    return "ratio" if inp.id and inp.transform != "log" else "difference"


def forecast_windows(task, table, mode: str = "split", cut: int = 0, ids=None):
    """The windowed samples as a new table (same origin and folder), the forecasting facts in frame.attrs.

    mode: "split" (train/valid/test origins as above), "all" (every origin with a full target: scoring other
    data), "predict" (one origin after the last point of each series, no target). `cut`: a rolling-origin fold,
    each series as it stood `cut` steps before its end. `ids`: only these series."""
    return _windows_table([_windows(task, table, mode, cut, ids)], table)


def prediction_windows(task, tables: list, ids=None):
    """forecast_windows(mode="predict") of several tables at once (the server's requests, each read as if alone),
    as one table: a row per series, the tables' series in order, and frame.attrs["forecast"]'s lists (ids, history,
    dates, scale) a value per row. Returns it and the number of series of each table."""
    found = [_windows(task, table, "predict", 0, ids) for table in tables]
    return _windows_table(found, tables[0]), [len(facts["history"]) for _, facts in found]


def _windows_table(found: list, table):
    """One table from the (samples, facts) of one or more tables: a DataFrame is built once, whatever the series."""
    from deepstation.data.sources import Table

    parts = [part for samples, _ in found for part in samples]
    samples = pd.DataFrame({k: _join([part[k] for part in parts]) for k in parts[0]})
    first = found[0][1]  # the task's settings, the same for every table; the per-series lists joined
    samples.attrs["forecast"] = Facts({
        **first, **{k: None if first[k] is None else [v for _, f in found for v in f[k]]
                    for k in ("ids", "skipped", "history", "dates")},
        "scale": np.concatenate([f["scale"] for _, f in found])})
    return Table(samples, table.origin, table.base_dir)


class Facts(dict):
    """The forecasting facts a windowed frame carries in attrs, read and never changed. pandas deep-copies a frame's
    attrs into every column and slice it hands out; these (every series' history and dates) are shared instead."""

    def __deepcopy__(self, memo):
        return self


def _windows(task, table, mode: str, cut: int, ids) -> tuple[list[dict], dict]:
    """forecast_windows' samples (columns per series) and forecasting facts, before they become one table."""
    from deepstation.data.sources import require_columns

    inp = forecasting_input(task)
    outs = [o for o in task.outputs if o.type == "number"]
    if len(task.inputs) != 1 or len(task.outputs) != 1 or not outs:
        raise DeepstationError("inputs/outputs: a forecasting task (a series input with `window`) has that one input "
                               "and one number output with a `horizon`")
    out = outs[0]
    for_prediction = mode == "predict"
    require_columns(table, {**{c: f"inputs.{inp.name}.columns" for c in inp.columns},
                            **({} if for_prediction else {out.column: f"outputs.{out.name}.column"}),
                            **{getattr(inp, k): f"inputs.{inp.name}.{k}" for k in ("date", "id", "order")
                               if getattr(inp, k)}})
    series = _gather(inp, out, table, for_prediction, ids)
    w, h = inp.window, out.horizon
    valid = 0 if for_prediction or task.data.split.valid == 0 else h
    least = inp.min_history or w  # the past an origin needs; a shorter one is padded to the window
    needed = least + (0 if for_prediction else h if mode == "all" else h + valid + h)  # a training sample, valid, test
    how = scaling_of(inp)
    season = inp.season or _season(series[0]["dates"])
    parts, kept, skipped = [], [], []
    for s in series:
        if cut:
            s = {**s, **{k: s[k][:len(s[k]) - cut] for k in ("values", "target", "original")},
                 "dates": None if s["dates"] is None else s["dates"][:len(s["dates"]) - cut]}
        n = len(s["values"])
        if n < needed:
            where = f"series {s['id']!r}" if inp.id else "the series"
            message = (f"{table.origin}: {where} has {n} points; {'window' if least == w else 'min_history'} "
                       f"{least} and horizon {h} need at least {needed} (a training sample, {valid} for validation, "
                       f"{h} for test); lower inputs.{inp.name}.{'window' if least == w else 'min_history'} or "
                       f"outputs.{out.name}.horizon, or add data")
            if inp.id and task.data.on_bad_sample == "skip":
                skipped.append(s["id"])
                continue
            raise DeepstationError(message + ("" if not inp.id else " (or set data.on_bad_sample: skip)"))
        # MASE's yardstick, as M4 defines it: on everything before the test horizon (scoring other data: all of it)
        s["scale"] = _mase_scale(s["original"][:n - h] if mode == "split" else s["original"], season)
        parts.append(_series_windows(s, inp, out, mode, w, least, h, valid, how, table.origin))
        kept.append(s)
    if skipped:
        print(f"warning: {table.origin}: skipped {len(skipped)} series shorter than {needed} points: "
              f"{', '.join(map(str, skipped[:5]))}{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
    if not parts:
        raise DeepstationError(f"{table.origin}: no series has the {needed} points needed; lower "
                               f"inputs.{inp.name}.window or outputs.{out.name}.horizon")
    return parts, {
        "log": inp.transform == "log", "horizon": h, "season": season, "scaling": how,
        "ids": [s["id"] for s in kept] if inp.id else None, "skipped": skipped,
        "history": [s["original"] for s in kept],  # each series in the output's units, test points included
        "dates": [s["dates"] for s in kept], "scale": np.asarray([s["scale"] for s in kept])}


def _series_windows(s, inp, out, mode, w, least, h, valid, how, origin) -> dict[str, np.ndarray]:
    """One series' samples, as columns of equal length: a row per origin with the window, the target, their level
    and the split. An origin needs `least` past points; a window reaching before the series' start repeats its
    first value."""
    pad = w - least
    values, target, n = s["values"], s["target"], len(s["values"])
    if mode == "predict":
        origins, splits = np.asarray([n]), ["predict"]
    elif mode == "all":
        origins = np.arange(least, n - h + 1)
        splits = ["test"] * len(origins)
    else:
        last_train = n - h - valid - h  # the last origin whose target ends before the held-out points
        first = least if not inp.max_origins else max(least, last_train + 1 - inp.max_origins)
        train = np.arange(first, last_train + 1)
        origins = np.concatenate([train, [n - h - valid] if valid else [], [n - h]]).astype(int)
        splits = ["train"] * len(train) + (["valid"] if valid else []) + ["test"]
    padded = np.concatenate([np.repeat(values[:1], pad, axis=0), values]) if pad else values
    view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0)  # [n + pad - w + 1, channels, w]
    windows = view[origins + pad - w].transpose(0, 2, 1)                # [origins, w, channels]
    k = inp.columns.index(out.column) if out.column in inp.columns else None
    levels = windows.mean(axis=1)                                       # [origins, channels]
    if k is not None:
        target_level = levels[:, k]
    else:
        padded = np.concatenate([np.repeat(target[:1], pad), target]) if pad else target
        target_level = np.lib.stride_tricks.sliding_window_view(padded, w)[origins + pad - w].mean(axis=1)
    if how == "ratio":
        if (levels <= 0).any() or (target_level <= 0).any():
            where = "the series" if s["id"] is None else f"series {s['id']!r}"
            raise DeepstationError(f"{origin}: {where} has a window whose mean is 0 or below; "
                                   f"scaling: ratio needs positive values; set inputs.{inp.name}.scaling: difference")
        relative = windows / levels[:, None, :] - 1
    else:
        relative = windows - levels[:, None, :]
    count = len(origins)
    if mode == "predict":
        goals = _cells([None])
    else:
        steps = np.lib.stride_tricks.sliding_window_view(target, h)[origins]  # [origins, h]
        goals = _cells((steps / target_level[:, None] - 1 if how == "ratio" else steps - target_level[:, None])
                       .astype(np.float32))
    dates = s["dates"]
    if dates is None:
        starts = _cells([None] * count)
    elif getattr(dates.dtype, "tz", None) is not None:  # Timestamps that keep their zone
        starts = _cells([dates.iloc[t] if t < n else future_dates(dates, 1)[0] for t in origins])
    else:
        starts = dates.to_numpy().astype("datetime64[ns]")[np.minimum(origins, n - 1)]
        if (origins >= n).any():  # predicting: the origin is the step after the last
            starts[origins >= n] = future_dates(dates, 1).to_numpy()[0]
    return {inp.name: _cells(relative.astype(np.float32)), out.column: goals, LEVEL: target_level,
            SCALE: np.full(count, s["scale"]), SPLIT: _cells(splits), ORIGIN: starts, SERIES: _cells([s["id"]] * count)}


def _join(columns: list) -> np.ndarray:
    """One column from the same column of every series' samples."""
    return columns[0] if len(columns) == 1 else np.concatenate(columns)


def _cells(values) -> np.ndarray:
    """A column of objects (arrays stay whole in their cells, where numpy would stack them)."""
    cells = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        cells[i] = value
    return cells


def _gather(inp, out, table, for_prediction: bool, ids) -> list[dict]:
    """Each series' values (after the optional log), target, original target and dates, in time order."""
    frame = table.frame
    values = np.stack([_numbers(frame, c, table.origin, f"inputs.{inp.name}.columns", inp.id)
                       for c in inp.columns], 1)
    target = values[:, inp.columns.index(out.column)] if out.column in inp.columns else (
        None if for_prediction else _numbers(frame, out.column, table.origin, f"outputs.{out.name}.column", inp.id))
    original = target if target is not None else values[:, 0]
    if inp.transform == "log":
        values = _log(values, table.origin, inp.columns)
        target = None if target is None else _log(target[:, None], table.origin, [out.column])[:, 0]
    if target is None:  # predicting with a separate target column: the level comes from the first channel
        target = values[:, 0]
    if not inp.id:
        dates = _dates(frame, inp.date, table.origin) if inp.date else None
        if inp.order:
            _steps(frame[inp.order], np.arange(len(frame)), table.origin, inp.order, None)
        return [{"id": None, "values": values, "target": target, "original": original,
                 "dates": None if dates is None else dates.reset_index(drop=True)}]
    keys = frame[inp.id]
    if keys.isna().any():
        row = int(np.flatnonzero(keys.isna().to_numpy())[0])
        raise DeepstationError(f"{table.origin}: row {row + 1}, column `{inp.id}` (inputs.{inp.name}.id): the series "
                               f"id is empty; give every row its series' id")
    wanted = None if ids is None else {str(i) for i in ids}
    if wanted is not None:
        missing = sorted(wanted - set(keys.astype(str)))
        if missing:
            raise DeepstationError(f"{table.origin}: no series {missing[0]!r} in column `{inp.id}`; ids look like "
                                   f"{', '.join(map(str, pd.unique(keys)[:3]))}")
    dates_all = None
    if inp.date:
        dates_all = parse_dates(frame[inp.date])
        bad = np.flatnonzero(dates_all.isna().to_numpy())
        if len(bad):
            raise DeepstationError(f"{table.origin}: row {bad[0] + 1}, column `{inp.date}`: "
                                   f"{frame[inp.date].iloc[bad[0]]!r} is not a date; use a form like 2024-01-31")
    order_all = None
    if inp.order:
        order_all = pd.to_numeric(frame[inp.order], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(order_all.to_numpy(dtype=float)))
        if len(bad):
            raise DeepstationError(f"{table.origin}: row {bad[0] + 1}, column `{inp.order}` (inputs.{inp.name}.order):"
                                   f" expected a whole time step, got {frame[inp.order].iloc[bad[0]]!r}")
    found = []
    for key, rows in pd.Series(np.arange(len(frame))).groupby(keys.to_numpy(), sort=False):
        if wanted is not None and str(key) not in wanted:
            continue
        rows = rows.to_numpy()
        if dates_all is not None:
            rows = rows[np.argsort(dates_all.to_numpy()[rows], kind="stable")]
            _date_steps(dates_all.iloc[rows], rows, table.origin, inp.date, key)
        elif order_all is not None:
            rows = rows[np.argsort(order_all.to_numpy()[rows], kind="stable")]
            _steps(order_all.iloc[rows], rows, table.origin, inp.order, key)
        found.append({"id": _plain_id(key), "values": values[rows], "target": target[rows],
                      "original": original[rows],
                      "dates": None if dates_all is None else dates_all.iloc[rows].reset_index(drop=True)})
    return found


def long_inputs(task) -> list:
    """The series inputs whose rows are time steps of whole series named by `id` (no `window`)."""
    return [i for i in task.inputs if i.type == "series" and i.id and not i.window]


def gather_series(task, table):
    """Long format to one row per series: each id's rows (in `order`, else row order) stacked as an array in the
    input's own column; the other columns the task reads must hold one value per series (a label, a split). With
    files given per split, the same id in two files is two series."""
    from deepstation.data.sources import GIVEN_SPLIT, Table, require_columns

    inputs, frame, origin = long_inputs(task), table.frame, table.origin
    key = inputs[0].id
    other = next((i for i in inputs if i.id != key), None)
    if other is not None:
        raise DeepstationError(f"inputs.{other.name}.id: `{other.id}`, but inputs.{inputs[0].name}.id is `{key}`; "
                               f"series gathered from one table share one id column")
    require_columns(table, {key: f"inputs.{inputs[0].name}.id",
                            **{c: f"inputs.{i.name}.columns" for i in inputs for c in i.columns},
                            **{i.order: f"inputs.{i.name}.order" for i in inputs if i.order}})
    keys = frame[key]
    if keys.isna().any():
        row = int(np.flatnonzero(keys.isna().to_numpy())[0])
        raise DeepstationError(f"{origin}: row {row + 1}, column `{key}` (inputs.{inputs[0].name}.id): the series "
                               f"id is empty; give every row its series' id")
    by = pd.MultiIndex.from_frame(frame[[GIVEN_SPLIT, key]]) if GIVEN_SPLIT in frame else keys
    codes = by.factorize()[0]
    order = inputs[0].order
    steps = None
    if order:
        steps = pd.to_numeric(frame[order], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(steps))
        if len(bad):
            raise DeepstationError(f"{origin}: row {bad[0] + 1}, column `{order}` (inputs.{inputs[0].name}.order): "
                                   f"expected a time step, got {frame[order].iloc[bad[0]]!r}")
    rows = np.lexsort((steps, codes)) if steps is not None else np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(codes[rows])) + 1])
    if steps is not None:
        repeat = np.flatnonzero((np.diff(steps[rows]) == 0) & (np.diff(codes[rows]) == 0))
        if len(repeat):
            at = rows[repeat[0] + 1]
            raise DeepstationError(f"{origin}: series {_plain_id(keys.iloc[at])!r}, row {at + 1}, column `{order}`: "
                                   f"repeats step {frame[order].iloc[at]!r}; each series needs each step once")
    first = rows[starts]
    gathered = {key: keys.to_numpy()[first]}
    for inp in inputs:
        values = np.stack([_numbers(frame, c, origin, f"inputs.{inp.name}.columns", key) for c in inp.columns], 1)
        gathered[inp.name] = list(np.split(values[rows].astype(np.float32), starts[1:]))
    for column in _per_series_columns(task, frame, inputs):
        _check_constant(frame[column], codes, keys, origin, column, key)
        gathered[column] = frame[column].to_numpy()[first]
    return Table(pd.DataFrame(gathered), origin, table.base_dir)


def _per_series_columns(task, frame, inputs) -> list[str]:
    """The columns besides the series' own that the task reads: outputs, the split, other inputs."""
    from deepstation.data.sources import GIVEN_SPLIT

    names = [o.column for o in task.outputs] + [task.data.split.column, GIVEN_SPLIT]
    for inp in task.inputs:
        if inp not in inputs:
            names += [*(getattr(inp, "columns", None) or []), *(getattr(inp, "categorical", None) or []),
                      getattr(inp, "column", None)]
    own = {c for i in inputs for c in (i.id, i.order, *i.columns)}
    return [c for c in dict.fromkeys(names) if c and c in frame and c not in own]


def _check_constant(column: pd.Series, codes, keys, origin, name: str, key: str) -> None:
    counts = pd.Series(column.astype(str).to_numpy()).groupby(codes).nunique()
    if (counts > 1).any():
        code = int(counts.index[np.argmax(counts.to_numpy() > 1)])
        rows = np.flatnonzero(codes == code)
        seen = pd.unique(column.astype(str).to_numpy()[rows])
        raise DeepstationError(f"{origin}: series {_plain_id(keys.iloc[rows[0]])!r} (column `{key}`) has "
                               f"{seen[0]!r} and {seen[1]!r} in column `{name}`; a series is one sample, so its "
                               f"rows need one value there: fix the rows or the id")


def _numbers(frame, column, origin, field, id_column) -> np.ndarray:
    """numeric_column, naming the series of a bad value when there are many."""
    try:
        return numeric_column(frame, column, origin, field)
    except DeepstationError as err:
        if not id_column:
            raise
        parsed = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        row = int(np.flatnonzero(~np.isfinite(parsed))[0])
        raise DeepstationError(f"{str(err).rstrip('.')} (series {_plain_id(frame[id_column].iloc[row])!r})") from None


def _steps(order, rows, origin, column, key) -> None:
    """Whole steps one apart: a repeat or a gap is named with its series and row."""
    step = np.diff(order.to_numpy(dtype=float))
    bad = np.flatnonzero(step != 1)
    if len(bad):
        row, where = rows[bad[0] + 1] + 1, "" if key is None else f"series {_plain_id(key)!r}, "
        what = "repeats a step" if step[bad[0]] == 0 else f"jumps from {order.iloc[bad[0]]} to {order.iloc[bad[0] + 1]}"
        raise DeepstationError(f"{origin}: {where}row {row}, column `{column}`: {what}; each series needs every step "
                               f"once (fill gaps, drop duplicates)")


def _date_steps(dates, rows, origin, column, key) -> None:
    gaps = np.diff(dates.to_numpy()).astype("timedelta64[s]").astype(float)
    repeat = np.flatnonzero(gaps == 0)
    if len(repeat):
        raise DeepstationError(f"{origin}: series {_plain_id(key)!r}, row {rows[repeat[0] + 1] + 1}, column "
                               f"`{column}`: {dates.iloc[repeat[0]].date()} appears twice; drop duplicate rows")
    if len(gaps) > 2:
        usual = float(np.median(gaps))
        gap = np.flatnonzero(gaps > 1.5 * usual)
        if len(gap):
            raise DeepstationError(f"{origin}: series {_plain_id(key)!r}, row {rows[gap[0] + 1] + 1}, column "
                                   f"`{column}`: a gap from {dates.iloc[gap[0]].date()} to "
                                   f"{dates.iloc[gap[0] + 1].date()}; fill the missing steps")


def _plain_id(key):
    return key.item() if isinstance(key, np.generic) else key


def _mase_scale(history: np.ndarray, season: int) -> float:
    """The in-sample seasonal naive forecast's mean absolute error (one-step naive when the series is shorter than
    two seasons); NaN when it is 0 (a constant series: MASE is undefined)."""
    lag = season if len(history) > 2 * season else 1
    if len(history) <= lag:
        return float("nan")
    error = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return error if error > 0 else float("nan")


def _season(dates) -> int:
    """Steps per year for monthly (12) and quarterly (4) data, else 1."""
    if dates is None or len(dates) < 3:
        return 1
    days = float(np.median(np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(float)))
    return 12 if 27 <= days <= 32 else 4 if 88 <= days <= 93 else 52 if 6 <= days <= 8 else 1


def future_dates(dates, steps: int) -> pd.DatetimeIndex:
    """The `steps` dates after the last, at the series' own frequency (read off its latest dates)."""
    recent = dates.to_numpy()[-8:]
    naive = getattr(dates.dtype, "tz", None) is None  # time zones (and their daylight saving) go to pandas
    ahead = _calendar_steps(recent, steps) if len(recent) >= 3 and naive else None
    if ahead is not None:
        return pd.DatetimeIndex(ahead)
    # anything else (business days, a series of two dates): pandas' inference, or the last gap
    freq = pd.infer_freq(dates.iloc[-min(len(dates), 8):]) if len(dates) >= 3 else None
    offset = pd.tseries.frequencies.to_offset(freq) if freq else dates.iloc[-1] - dates.iloc[-2]
    found, last = [], dates.iloc[-1]
    for _ in range(steps):
        last = last + offset
        found.append(last)
    return pd.DatetimeIndex(found)


def _calendar_steps(recent: np.ndarray, steps: int) -> np.ndarray | None:
    """The dates after `recent` (datetime64[ns], in order) for a series that steps a whole number of months (on one
    day of the month, or a fixed time before its end: month ends) or a fixed time (hours, days, weeks); None for
    other series. In numpy: a served forecast reads the dates of every request."""
    recent = recent.astype("datetime64[ns]")
    months = recent.astype("datetime64[M]")
    month_gaps = np.diff(months.astype(np.int64))
    ahead = np.arange(1, steps + 1)
    if month_gaps[0] > 0 and (month_gaps == month_gaps[0]).all():
        future = months[-1] + month_gaps[0] * ahead
        into = recent - months.astype("datetime64[ns]")                    # since the month's start
        before_end = (months + 1).astype("datetime64[ns]") - recent       # until the next month's start
        if (into == into[0]).all() and into[0] < np.timedelta64(28, "D"):
            return future.astype("datetime64[ns]") + into[0]
        if (before_end == before_end[0]).all():
            return (future + 1).astype("datetime64[ns]") - before_end[0]
    gaps = np.diff(recent)
    if gaps[0] > np.timedelta64(0) and (gaps == gaps[0]).all():
        return recent[-1] + gaps[0] * ahead
    return None


def parse_dates(column: pd.Series) -> pd.Series:
    """A column's dates, NaT where a value is none. Dates written YYYY-MM-DD[ hh:mm:ss], without a time zone, are
    read by numpy (a served forecast reads a history's dates with every request; pandas guessing the format takes
    30 times as long); any other form by pandas, which guesses it."""
    values = column.to_numpy()
    if values.dtype == object and len(values) and _plain_iso(values):
        try:
            found = values.astype("datetime64[us]")
        except ValueError:  # a month 13 and the like: pandas' reader below says which row
            found = None
        # nanoseconds reach from 1677 to 2262 only (numpy would wrap a year 3000 round); pandas reads the others
        if found is not None and not ((found < NS_FIRST) | (found > NS_LAST)).any():
            return pd.Series(found.astype("datetime64[ns]"), index=column.index, name=column.name)
    return pd.to_datetime(column, errors="coerce")


def _plain_iso(values: np.ndarray) -> bool:
    if not all(isinstance(v, str) and len(v) >= 7 and v[4] == "-" for v in values):
        return False
    times = "".join(v[10:] for v in values)
    return not any(mark in times for mark in "+-Zz")  # a time zone, which numpy would drop


def _dates(frame, column, origin) -> pd.Series:
    parsed = parse_dates(frame[column])
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
        # forecasting tables are windowed first, long tables gathered: the input's own name is then its column
        gathered = self.spec.window or self.spec.id
        return {self.spec.name if gathered else c: f"inputs.{self.spec.name}.columns" for c in self.spec.columns}

    def read(self, table, on_bad_sample="error"):
        lengths = None
        if self.spec.window:
            x = np.stack(table.frame[self.spec.name].tolist()).astype(np.float32)
        else:
            arrays = self._arrays(table)
            lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
            x = self._one_length(arrays, lengths)
        cal = np.zeros((len(x), 0), dtype=np.float32)
        if self.spec.calendar and ORIGIN in table.frame:
            origin = pd.to_datetime(table.frame[ORIGIN])
            month = origin.dt.month.to_numpy() - 1
            cal = np.concatenate([np.eye(12, dtype=np.float32)[month],
                                  np.eye(7, dtype=np.float32)[origin.dt.dayofweek.to_numpy()]], axis=1)
        raw = {"x": x, "cal": cal}
        if lengths is not None:
            raw["lengths"] = lengths
        if self.spec.window and self.spec.embed_id:
            raw["id"] = table.frame[SERIES].astype(str).to_numpy(dtype=object)
        return raw, np.zeros(len(x), dtype=bool)

    def _arrays(self, table) -> list[np.ndarray]:
        """Each row's series, [length, channels]: a column of arrays (or one per channel), a gathered long table,
        or one value per column of a wide table."""
        frame, columns, name = table.frame, self.spec.columns, self.spec.name
        if self.spec.id:
            return list(frame[name])
        held = [c for c in columns if frame[c].dtype == object and _is_array(frame[c])]
        if held and len(held) < len(columns):
            plain = next(c for c in columns if c not in held)
            raise DeepstationError(f"{table.origin}: inputs.{name}.columns mixes columns of whole series "
                                   f"(`{held[0]}`) and of single values (`{plain}`); list one kind")
        if held:
            found = []
            for row, cells in enumerate(zip(*(frame[c] for c in columns))):
                parts = [_as_2d(v, table.origin, row, c, name) for v, c in zip(cells, columns)]
                if len({len(p) for p in parts}) > 1:
                    raise DeepstationError(f"{table.origin}: row {row + 1}: the series in columns "
                                           f"{', '.join(columns)} have different lengths "
                                           f"({', '.join(str(len(p)) for p in parts)}); each channel needs one")
                found.append(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
            return found
        if len(columns) == 1:
            raise DeepstationError(
                f"{table.origin}: inputs.{name}.columns names one column of single values (`{columns[0]}`), which "
                f"makes each row a series one step long; for a long table (a row per time step) set "
                f"inputs.{name}.id to the column naming each series (and `order` to its step column), or list the "
                f"value columns of a wide table (patterns such as \"v*\" work)")
        # one row = one series spread over columns (t1, t2, ...): a univariate series per row; blanks at the end of
        # a row are the padding of a shorter series, a blank or text before its end is an error
        values = np.stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns], 1)
        finite = np.isfinite(values)
        ends = values.shape[1] - np.argmax(finite[:, ::-1], axis=1)
        ends[~finite.any(axis=1)] = 0
        inner = ~finite & (np.arange(values.shape[1])[None, :] < ends[:, None])
        if inner.any() or (ends == 0).any():
            row = int(np.flatnonzero(inner.any(axis=1) | (ends == 0))[0])
            col = int(np.argmax(inner[row])) if inner[row].any() else 0
            got = frame[columns[col]].iloc[row]
            raise DeepstationError(f"{table.origin}: row {row + 1}, column `{columns[col]}` (inputs.{name}.columns): "
                                   f"expected a number, got {'an empty value' if pd.isna(got) else repr(got)}; a "
                                   f"shorter series may end in blanks, but not have them before its end")
        return [values[i, :n, None].astype(np.float32) for i, n in enumerate(ends)]

    def _one_length(self, arrays: list, lengths: np.ndarray) -> np.ndarray:
        """[N, longest, channels], shorter series padded with NaN: encode brings them to the fitted length (fitted on
        the training rows alone, so test series never decide it)."""
        channels = {a.shape[1] for a in arrays}
        if self.state is not None and channels != {self.state["channels"]} and arrays:
            raise DeepstationError(f"inputs.{self.spec.name}: series with {sorted(channels)[0]} channel(s), but the "
                                   f"model was trained on {self.state['channels']}")
        if len(channels) > 1:
            counts = " and ".join(map(str, sorted(channels)))
            raise DeepstationError(f"inputs.{self.spec.name}: the series have {counts} channels; every series needs "
                                   f"the same number")
        width = channels.pop() if channels else 1
        x = np.full((len(arrays), int(lengths.max(initial=1)), width), np.nan, dtype=np.float32)
        for i, a in enumerate(arrays):
            x[i, :len(a)] = a
        return x

    def _to_length(self, raw, target: int) -> np.ndarray:
        """The series at `target` steps: padded (NaN, the channel's mean once standardised) or cut, or each
        resampled from its own length."""
        x, lengths = raw["x"], raw.get("lengths")
        if lengths is None or (x.shape[1] == target and (lengths == target).all()):
            return x
        if self.spec.unequal == "resample":
            return np.stack([_resample(x[i, :n], target) if n != target else x[i, :target]
                             for i, n in enumerate(lengths)]) if len(x) else x[:, :0]
        if x.shape[1] >= target:
            return x[:, :target]
        return np.concatenate([x, np.full((len(x), target - x.shape[1], x.shape[2]), np.nan, np.float32)], axis=1)

    def fit(self, raw) -> None:
        lengths = raw.get("lengths")
        length = self.spec.length if not self.spec.window and self.spec.length else (
            int(lengths.max(initial=1)) if lengths is not None else raw["x"].shape[1])
        x = self._to_length(raw, length)
        std = np.nanstd(x, axis=(0, 1)) if len(x) else np.ones(x.shape[2])
        self.state = {"length": int(x.shape[1]), "channels": int(x.shape[2]), "calendar": int(raw["cal"].shape[1]),
                      "mean": np.nanmean(x, axis=(0, 1)).tolist() if len(x) else [0.0] * x.shape[2],
                      "std": np.where(np.isfinite(std) & (std > 0), std, 1.0).tolist()}
        if lengths is not None and len(lengths) and (lengths.min() != lengths.max() or lengths.max() != length):
            self.state["unequal"] = {"shortest": int(lengths.min()), "longest": int(lengths.max()),
                                     "how": self.spec.unequal}
            # padded series tell the model their own steps: it summarises over those, not over the padding
            self.state["masked"] = self.spec.unequal == "pad"
        if "id" in raw:  # index 0 is for a series never seen in training
            self.state.update(ids=sorted(set(raw["id"].tolist())), embed=self.spec.embed_id)

    def notes(self) -> list[str]:
        """What the run's summary should say about the data as read."""
        u = (self.state or {}).get("unequal")
        if not u:
            return []
        how = ("resampled to" if u["how"] == "resample" else "padded at the end (or cut) to")
        return [f"inputs.{self.spec.name}: series of {u['shortest']} to {u['longest']} steps, {how} "
                f"{self.state['length']}"]

    def encode(self, raw) -> dict:
        import torch

        how = "train" if self.spec.window else self.spec.normalize
        sized = self._to_length(raw, self.state["length"])
        if how != "each":
            x = (sized - np.asarray(self.state["mean"], dtype=np.float32)) / np.asarray(self.state["std"],
                                                                                           dtype=np.float32)
        if how != "train":  # each: the series' shape alone; both: its shape beside its level, as more channels
            x = _z_normalise(sized) if how == "each" else np.concatenate([x, _z_normalise(sized)], axis=2)
        if x.shape[1] != self.state["length"]:
            raise DeepstationError(f"inputs.{self.spec.name}: series of length {x.shape[1]}, but the model was "
                                   f"trained on length {self.state['length']}")
        x = np.nan_to_num(x, nan=0.0)  # the padding: the channel's mean
        found = {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), "cal": torch.from_numpy(raw["cal"])}
        if self.state.get("masked"):  # each series' own steps, at most the length it was brought to
            lengths = raw.get("lengths")
            own = np.full(len(x), x.shape[1]) if lengths is None else np.minimum(lengths, x.shape[1])
            found["steps"] = torch.from_numpy(own.astype(np.int64))
        if self.state.get("ids"):
            index = {name: i + 1 for i, name in enumerate(self.state["ids"])}
            found["id"] = torch.tensor([index.get(v, 0) for v in raw["id"].tolist()], dtype=torch.long)
        return found

    def shape(self) -> dict:
        both = not self.spec.window and self.spec.normalize == "both"  # encode's channels
        channels = self.state["channels"] * (2 if both else 1)
        return {"type": "series", "length": self.state["length"], "channels": channels,
                "calendar": self.state["calendar"], "ids": len(self.state.get("ids") or []) + 1,
                "embed": self.state.get("embed", 0)}


def _is_array(column: pd.Series) -> bool:
    first = next((v for v in column if v is not None), None)
    return first is not None and not isinstance(first, (str, bytes)) and hasattr(first, "__len__")


def _as_2d(value, origin, row: int, column: str, name: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DeepstationError(f"{origin}: row {row + 1}, column `{column}` (inputs.{name}.columns): expected a "
                               f"series of numbers, got {str(value)[:40]!r}") from None
    if a.ndim not in (1, 2) or len(a) == 0:
        raise DeepstationError(f"{origin}: row {row + 1}, column `{column}` (inputs.{name}.columns): expected a "
                               f"series ([length] or [length, channels]), got shape {a.shape}")
    return a[:, None] if a.ndim == 1 else a


def _resample(a: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of each channel to `length` steps."""
    if len(a) == 1:
        return np.repeat(a, length, axis=0)
    at = np.linspace(0, len(a) - 1, length)
    return np.stack([np.interp(at, np.arange(len(a)), a[:, k]) for k in range(a.shape[1])], 1).astype(np.float32)


def _z_normalise(x: np.ndarray) -> np.ndarray:
    """Each series and channel less its own mean, over its own standard deviation (a constant one: over 1); the
    padding (NaN) stays NaN."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel all NaN: no mean, padded to 0 later
        mean = np.nanmean(x, axis=1, keepdims=True)
        std = np.nanstd(x, axis=1, keepdims=True)
    return ((x - mean) / np.where(np.isfinite(std) & (std > 0), std, 1.0)).astype(np.float32)
