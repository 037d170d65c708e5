"""Series: forecasting windows without leakage, date checks, UCR classification, baselines and the reference."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import deepstation
from conftest import cli, last_json, user_error, write_task
from deepstation.config import load_task
from deepstation.data.series import LEVEL, SPLIT, forecast_windows
from deepstation.data.sources import Table


def monthly(n=60, start="2000-01-01") -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"date": pd.date_range(start, periods=n, freq="MS"),
                         "sales": 100 * 1.01 ** t * (1 + 0.2 * np.sin(2 * np.pi * t / 12))})


def forecast_task(source, **trainer) -> dict:
    return {"name": "sales", "data": {"source": str(source), "split": {"valid": 0.1}},
            "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "date": "date", "window": 12,
                        "transform": "log"}],
            "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": 6}],
            "model": {"encoders": {"history": {"kind": "mlp", "width": 16, "depth": 1}}},
            "trainer": {"epochs": 3, "batch_size": 8, "device": "cpu", **trainer}}


@pytest.fixture
def sales_csv(tmp_path):
    path = tmp_path / "sales.csv"
    monthly().to_csv(path, index=False)
    return path


def windows(frame, raw):
    return forecast_windows(load_task(raw), Table(frame, "sales.csv", None)).frame


def test_windows_hold_out_the_last_horizon_without_leakage(sales_csv):
    frame = monthly()
    w = windows(frame, forecast_task(sales_csv))
    assert list(w[SPLIT]).count("test") == 1 and list(w[SPLIT]).count("valid") == 1
    n, h = 60, 6
    train = w[w[SPLIT] == "train"]
    assert len(train) == n - 12 - 3 * h + 1  # every origin whose target ends before validation starts
    last_train_target = np.exp(train["sales"].iloc[-1] + train[LEVEL].iloc[-1])
    assert np.allclose(last_train_target, frame["sales"].iloc[n - 2 * h - h:n - 2 * h])
    test = w[w[SPLIT] == "test"].iloc[0]
    assert np.allclose(np.exp(test["sales"] + test[LEVEL]), frame["sales"].iloc[-h:])
    assert w.attrs["forecast"]["season"] == 12


def test_forecast_trains_scores_in_the_output_units_and_predicts(sales_csv):
    run = deepstation.train(forecast_task(sales_csv, epochs=30))
    test = run.metrics["test"]
    assert {"mae", "rmse", "mape", "smape", "mase"} <= set(test) and test["mape"] < 50
    future = run.predict(str(sales_csv))
    assert list(future.columns) == ["step", "date", "forecast"] and list(future["step"]) == [1, 2, 3, 4, 5, 6]
    assert future["date"].iloc[0] == pd.Timestamp("2005-01-01") and future["date"].iloc[-1] == pd.Timestamp("2005-06-01")
    assert 50 < future["forecast"].iloc[0] < 400


def test_compare_forecast_has_a_classical_reference(sales_csv, tmp_path):
    out = last_json(cli("compare", write_task(tmp_path, forecast_task(sales_csv)), "--json", check=0).stdout)
    assert out["baseline"]["name"] == "LagRegression"
    names = [r["name"] for r in out["references"]]
    assert names == ["naive", "seasonal_naive", "naive2", "ets", "theta"]
    ets = out["references"][names.index("ets")]["metrics"]["test"]
    assert ets["mape"] < 5  # a clean seasonal series: exponential smoothing nails it
    naive2 = out["references"][names.index("naive2")]["metrics"]["test"]
    assert naive2["owa"] == pytest.approx(1.0) and "owa" in out["deep"]["metrics"]["test"]
    # the winner of each metric is named, whichever method it is
    scores = {"deep": out["deep"]["metrics"]["test"]["mase"], "hand-picked": out["baseline"]["metrics"]["test"]["mase"],
              **{r["name"]: r["metrics"]["test"]["mase"] for r in out["references"]}}
    assert out["best"]["mase"] == [min(scores, key=scores.get)]
    assert "Forecast of the held-out horizon" in open(out["report"]).read()


@pytest.mark.parametrize("change, expected", [
    (lambda f: f.drop(index=5), None),
    (lambda f: f.assign(date=f["date"].astype(str).where(f.index != 4, "someday")), "row 5, column `date`"),
    (lambda f: pd.concat([f.iloc[:10], f.iloc[9:10], f.iloc[10:]]), "repeats the row above"),
    (lambda f: pd.concat([f.iloc[:10], f.iloc[11:12], f.iloc[10:11], f.iloc[12:]]), "comes before the row above"),
    (lambda f: f.head(20), "the series has 20 points"),
])
def test_bad_series(tmp_path, change, expected):
    path = tmp_path / "sales.csv"
    change(monthly()).reset_index(drop=True).to_csv(path, index=False)
    result = cli("train", write_task(tmp_path, forecast_task(path)), "--quiet")
    if expected is None:
        assert result.returncode == 0, result.stderr
    else:
        assert expected in user_error(result)


def test_ucr_gunpoint_loads_with_its_split():
    from deepstation.data.sources import read_source

    frame = read_source("builtin:ucr/GunPoint").frame
    assert len(frame) == 200 and frame["series"][0].shape == (150, 1)
    assert (frame["split"] == "test").sum() == 150 and (frame["split"] == "valid").sum() == 10


def test_unknown_ucr_set_suggests(tmp_path):
    raw = {"name": "u", "data": {"source": "builtin:ucr/GunPont", "split": {"column": "split"}},
           "inputs": [{"name": "s", "type": "series", "columns": ["series"]}],
           "outputs": [{"name": "y", "type": "category", "column": "label"}]}
    assert "Did you mean `GunPoint`?" in user_error(cli("train", write_task(tmp_path, raw)))


@pytest.mark.parametrize("kind", ["mlp", "cnn1d", "gru", "transformer"])
def test_series_classification_encoders(tmp_path, kind):
    raw = {"name": "gp", "data": {"source": "builtin:ucr/GunPoint", "split": {"column": "split"}},
           "inputs": [{"name": "motion", "type": "series", "columns": ["series"]}],
           "outputs": [{"name": "gesture", "type": "category", "column": "label"}],
           "model": {"encoders": {"motion": {"kind": kind, "width": 8, "depth": 1}}},
           "trainer": {"epochs": 1, "batch_size": 16, "device": "cpu"}}
    out = last_json(cli("compare", write_task(tmp_path, raw), "--json", check=0).stdout)
    assert 0 <= out["deep"]["metrics"]["test"]["accuracy"] <= 1
    assert out["baseline"]["name"] == "SummaryForest" and out["baseline"]["metrics"]["test"]["accuracy"] > 0.6
    references = {r["name"]: r["metrics"]["test"]["accuracy"] for r in out["references"]}
    assert references["minirocket"] > 0.9 and references["dtw"] > 0.85  # published: 0.993 and 0.907


@pytest.mark.parametrize("pool,temporal", [("mean", False), ("max", False), ("meanmax", False), ("meanmax", True)])
def test_cnn1d_kernel_dilation_and_pooling_keep_the_steps(pool, temporal):
    import torch

    from deepstation.config import Cnn1dEncoder
    from deepstation.models.encoders.series import CNN1d

    config = Cnn1dEncoder(kind="cnn1d", width=4, depth=3, kernel=9, dilation=2, pool=pool)
    encoder = CNN1d(config, {"channels": 2, "length": 50, "calendar": 0, "ids": 1, "embed": 0}, temporal=temporal)
    x = {"x": torch.randn(3, 50, 2), "cal": torch.zeros(3, 0)}
    found = encoder(x)
    if temporal:
        steps, lengths = found
        assert steps.shape == (3, 50, encoder.out_dim) and lengths.tolist() == [50, 50, 50]
    else:
        assert found.shape == (3, encoder.out_dim) and encoder.out_dim == 16 * (2 if pool == "meanmax" else 1)


@pytest.mark.parametrize("kind, options", [("cnn1d", {"pool": "meanmax", "kernel": 5, "dilation": 2}),
                                           ("cnn1d", {"pool": "mean", "stride": 3}), ("gru", {}),
                                           ("transformer", {"heads": 2, "width": 8})])
def test_a_padded_series_is_summarised_over_its_own_steps(kind, options):
    """Series of 7 and 20 steps read together (the short one padded): the short one's summary is what it would be
    read alone, so the padding does not dilute it; a run trained before `masked` keeps its old reading."""
    import torch

    from deepstation.config import SeriesInput
    from deepstation.data.series import SeriesCodec
    from deepstation.data.sources import Table
    from deepstation.models.encoders import build_encoder
    from deepstation.config import load_task

    spec = SeriesInput(name="wave", type="series", columns=["series"], normalize="both")
    rng = np.random.default_rng(0)
    short, long = rng.normal(size=(7, 1)).astype(np.float32), rng.normal(size=(20, 1)).astype(np.float32)
    codec = SeriesCodec(spec)
    raw, _ = codec.read(Table(pd.DataFrame({"series": [short, long]}), "t", None))
    codec.fit(raw)
    assert codec.state["masked"]
    both = codec.encode(raw)
    assert both["steps"].tolist() == [7, 20]
    task = load_task({"name": "t", "data": {"source": "x.csv"}, "inputs": [{"name": "wave", "type": "series",
                      "columns": ["series"]}], "outputs": [{"name": "y", "type": "category", "column": "y"}],
                      "model": {"encoders": {"wave": {"kind": kind, "width": 4, "depth": 2, **options}}}})
    torch.manual_seed(0)
    encoder = build_encoder(task.model.encoders["wave"], codec.shape()).eval()
    noise = {**both, "x": both["x"].clone()}
    noise["x"][0, 7:] = torch.randn(13, noise["x"].shape[2])  # whatever the padding holds
    with torch.no_grad():
        together, unmasked = encoder(both)[0], encoder({k: v for k, v in both.items() if k != "steps"})[0]
        assert torch.allclose(encoder(noise)[0], together, atol=1e-5)
        if kind != "transformer":  # its positions are learned for the trained length: no shorter input
            by_itself = encoder({"x": both["x"][:1, :7], "cal": both["cal"][:1]})[0]  # its own steps alone
            assert torch.allclose(together, by_itself, atol=1e-5)
    assert not torch.allclose(unmasked, together, atol=1e-3)  # without its steps the padding counts
    old = SeriesCodec(spec, {k: v for k, v in codec.state.items() if k != "masked"})
    assert "steps" not in old.encode(raw)


def test_copper_and_cpi_are_dated_price_series():
    from deepstation.data.sources import read_source

    copper = read_source("builtin:copper").frame
    assert len(copper) == 25 and copper["date"].iloc[0] == pd.Timestamp("1951-01-01") and "copperprice" in copper
    cpi = read_source("builtin:cpi").frame
    assert len(cpi) == 203 and cpi["date"].is_monotonic_increasing and cpi["cpi"].iloc[0] == pytest.approx(28.98)


def test_rolling_origin_backtest_averages_the_folds(sales_csv):
    raw = forecast_task(sales_csv, epochs=5)
    raw["data"]["split"]["backtest"] = 3
    run = deepstation.train(raw)
    bt = run.summary["backtest"]
    assert len(bt["folds"]) == 3 and bt["folds"][0] == run.metrics["test"]
    assert bt["mean"]["mape"] == pytest.approx(np.mean([f["mape"] for f in bt["folds"]]))
    assert len({f["mae"] for f in bt["folds"]}) == 3  # each fold tests other months


def test_fold_windows_end_earlier(sales_csv):
    frame = monthly()
    task = load_task(forecast_task(sales_csv))
    full = forecast_windows(task, Table(frame, "s", None)).frame
    fold = forecast_windows(task, Table(frame, "s", None), cut=6).frame
    assert len(fold) == len(full) - 6
    assert np.allclose(np.exp(fold["sales"].iloc[-1] + fold[LEVEL].iloc[-1]), frame["sales"].iloc[-12:-6])


def test_a_backtest_longer_than_the_series_fails_before_training(sales_csv, tmp_path):
    raw = forecast_task(sales_csv)
    raw["data"]["split"]["backtest"] = 9
    line = user_error(cli("train", write_task(tmp_path, raw)))
    assert "data.split.backtest: 9" in line and not (tmp_path / "runs").exists()


def test_demo_summary_marks_the_winner_and_says_when_deep_loses(sales_csv, tmp_path):
    result = cli("demo", "--tasks", write_task(tmp_path, forecast_task(sales_csv, epochs=1)), "--json", check=0)
    out = last_json(result.stdout)["tasks"][0]
    winners = out["best"]["mape"]
    said = [ln for ln in result.stderr.splitlines() if ln.startswith("sales: the deep model loses on mape")]
    assert len(said) == (0 if "deep" in winners else 1)
    if said:
        assert said[0].startswith(f"sales: the deep model loses on mape: {winners[0]} ")


@pytest.mark.parametrize("dates, expected", [
    (pd.date_range("2020-01-01", periods=10, freq="MS"), ["2020-11-01", "2020-12-01", "2021-01-01"]),
    (pd.date_range("2020-01-31", periods=10, freq="ME"), ["2020-11-30", "2020-12-31", "2021-01-31"]),
    (pd.date_range("2019-03-31", periods=6, freq="QE"), ["2020-09-30", "2020-12-31", "2021-03-31"]),
    (pd.DatetimeIndex([f"2020-{m:02d}-15" for m in range(1, 11)]), ["2020-11-15", "2020-12-15", "2021-01-15"]),
    (pd.date_range("2020-02-26", periods=5, freq="D"), ["2020-03-02", "2020-03-03", "2020-03-04"]),
    (pd.date_range("2020-01-05", periods=5, freq="W"), ["2020-02-09", "2020-02-16", "2020-02-23"]),
    (pd.date_range("2020-01-01 22:00", periods=5, freq="h"), ["2020-01-02 03:00", "2020-01-02 04:00",
                                                              "2020-01-02 05:00"]),
    (pd.date_range("2020-01-01", periods=10, freq="YS"), ["2030-01-01", "2031-01-01", "2032-01-01"]),
    (pd.date_range("2020-01-01", periods=8, freq="B"), ["2020-01-13", "2020-01-14", "2020-01-15"]),  # pandas'
    (pd.date_range("2020-03-27", periods=5, freq="D", tz="Europe/Berlin"),
     [pd.Timestamp(d, tz="Europe/Berlin") for d in ("2020-04-01", "2020-04-02", "2020-04-03")]),
])
def test_future_dates_step_at_the_series_own_frequency(dates, expected):
    from deepstation.data.series import future_dates

    found = future_dates(pd.Series(dates), 3)
    assert list(found) == [pd.Timestamp(e) for e in expected]


@pytest.mark.parametrize("values", [["1949-01-01", "1949-02-01", "1949-03-01"],
                                    ["1949-01-01 00:00:00", "1949-02-01 06:30:00", "1949-03-01 00:00:00"],
                                    ["01/02/2020", "02/02/2020", "03/02/2020"],
                                    ["2020-01-01T00:00+01:00", "2020-01-02T00:00+01:00", "2020-01-03T00:00+01:00"],
                                    ["20200101", "20200102", "20200103"],
                                    ["3000-01-01", "3000-02-01", "3000-03-01"],  # past nanoseconds' reach
                                    ["2020-01-01", "", "2020-13-01"]])
def test_dates_read_as_pandas_reads_them(values):
    from deepstation.data.series import parse_dates

    column = pd.Series(np.asarray(values, dtype=object))
    expected = pd.to_datetime(column, errors="coerce")
    found = parse_dates(column)
    assert found.isna().tolist() == expected.isna().tolist()
    assert [str(v) for v in found.dropna()] == [str(v) for v in expected.dropna()]


def test_dates_in_mixed_iso_forms_are_all_read():
    from deepstation.data.series import parse_dates

    found = parse_dates(pd.Series(np.asarray(["1949-01-01", "1949-02-01 00:00:00", "1949-03"], dtype=object)))
    assert [str(v.date()) for v in found] == ["1949-01-01", "1949-02-01", "1949-03-01"]
