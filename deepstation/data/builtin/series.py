"""Real series shipped inside installed packages (never downloaded): sktime's airline passengers and UCR
archive sets, statsmodels' US consumer price index."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from deepstation.errors import DeepstationError, did_you_mean


def airline() -> pd.DataFrame:
    """Monthly international airline passengers (thousands), 1949-1960: Box and Jenkins' series."""
    from sktime.datasets import load_airline

    y = load_airline()
    return pd.DataFrame({"date": y.index.to_timestamp(), "passengers": y.to_numpy(dtype=float)})


def cpi() -> pd.DataFrame:
    """US consumer price index, quarterly 1959-2009 (statsmodels' macrodata)."""
    from statsmodels.datasets import macrodata

    d = macrodata.load_pandas().data
    dates = pd.PeriodIndex.from_fields(year=d["year"].astype(int), quarter=d["quarter"].astype(int),
                                       freq="Q").to_timestamp()
    return pd.DataFrame({"date": dates, "cpi": d["cpi"].to_numpy(dtype=float)})


def ucr(name: str, valid: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """A UCR/UEA classification set that sktime bundles, with the archive's own train/test split; `valid` of
    the training series (stratified) are held out for validation."""
    from pathlib import Path

    from deepstation.data.archives import read_ts

    available = ucr_names()
    if name not in available:
        raise DeepstationError(f"data.source: builtin:ucr/{name} is not bundled with sktime; available: "
                               f"{', '.join(available)}." + did_you_mean(name, available))
    parts = []
    for part in ("TRAIN", "TEST"):  # multivariate and unequal-length sets too: arrays [length, channels]
        frame = read_ts(Path(_data_dir()) / name / f"{name}_{part}.ts")[["series", "label"]]
        frame["split"] = "train" if part == "TRAIN" else "test"
        parts.append(frame)
    frame = pd.concat(parts, ignore_index=True)
    rng = np.random.default_rng(seed)
    for label in sorted(set(frame["label"])):
        rows = np.flatnonzero((frame["split"] == "train") & (frame["label"] == label))
        frame.loc[rng.permutation(rows)[:round(len(rows) * valid)], "split"] = "valid"
    return frame


def ucr_names() -> list[str]:
    folder = _data_dir()
    return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n, f"{n}_TRAIN.ts")))


def _data_dir() -> str:
    import sktime.datasets

    return os.path.join(os.path.dirname(sktime.datasets.__file__), "data")


def copper() -> pd.DataFrame:
    """The world copper market 1951-1975, yearly (statsmodels): the copper price with consumption, an income
    index, the aluminium price and an inventory index beside it."""
    from statsmodels.datasets import copper as data

    d = data.load_pandas().data
    frame = d.rename(columns=str.lower).drop(columns=["time"])
    frame.insert(0, "date", pd.to_datetime([f"{1950 + int(t)}-01-01" for t in d["TIME"]]))
    return frame
