"""Many series in one forecasting task: long-format windows without leakage, per-series scaling and MASE, N-BEATS,
ensembles, quantiles, long-format predictions, and every mistake in such data named in one line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import deepstation
from conftest import cli, last_json, user_error, write_task
from deepstation.config import load_task
from deepstation.data.series import LEVEL, SCALE, SERIES, SPLIT, forecast_windows
from deepstation.data.sources import Table

H, W = 4, 8


def panel(n_series=4, length=48, seed=0) -> pd.DataFrame:
    """Series of very different sizes (1 to 1000s), each a trend and a season of 6 with noise, in long format,
    rows shuffled (the order column puts them back)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.arange(1, length + 1 + i)  # series of different lengths
        value = 10.0 ** i * (5 + 0.05 * t + np.sin(2 * np.pi * t / 6) + 0.1 * rng.standard_normal(len(t)))
        parts.append(pd.DataFrame({"store": f"s{i}", "t": t, "sales": value}))
    return pd.concat(parts, ignore_index=True).sample(frac=1, random_state=0).reset_index(drop=True)


def panel_task(source, **extra) -> dict:
    task = {"name": "stores", "data": {"source": str(source)},
            "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "id": "store", "order": "t",
                        "window": W, "season": 6}],
            "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": H, "loss": "smape",
                         "quantiles": [0.1, 0.5, 0.9]}],
            "model": {"encoders": {"history": {"kind": "nbeats", "blocks": 2, "layers": 2, "width": 16}}},
            "trainer": {"epochs": 3, "batch_size": 32, "device": "cpu", "monitor": "smape"}}
    for key, value in extra.items():
        task[key] = {**task.get(key, {}), **value} if isinstance(value, dict) else value
    return task


@pytest.fixture
def panel_csv(tmp_path):
    path = tmp_path / "stores.csv"
    panel().to_csv(path, index=False)
    return path


def windows(raw, frame):
    return forecast_windows(load_task(raw), Table(frame, "stores.csv", None))


def test_each_series_holds_out_its_own_last_horizon(panel_csv):
    frame = panel()
    table = windows(panel_task(panel_csv), frame)
    w, f = table.frame, table.frame.attrs["forecast"]
    assert f["ids"] == list(pd.unique(frame["store"])) and f["scaling"] == "ratio"  # first-seen order; ratio
    for i, sid in enumerate(f["ids"]):
        rows = w[w[SERIES] == sid]
        values = frame[frame["store"] == sid].sort_values("t")["sales"].to_numpy()
        n = len(values)
        assert list(rows[SPLIT]).count("test") == 1 and list(rows[SPLIT]).count("valid") == 1
        test, valid = rows[rows[SPLIT] == "test"].iloc[0], rows[rows[SPLIT] == "valid"].iloc[0]
        assert np.allclose((test["sales"] + 1) * test[LEVEL], values[-H:])   # the test is the last horizon
        assert np.allclose((valid["sales"] + 1) * valid[LEVEL], values[-2 * H:-H])
        train = rows[rows[SPLIT] == "train"]
        assert len(train) == n - W - 3 * H + 1  # no training target reaches into validation or test
        assert np.allclose((train["sales"].iloc[-1] + 1) * train[LEVEL].iloc[-1], values[n - 3 * H:n - 2 * H])
        # MASE's yardstick: the seasonal naive error on everything before the test horizon
        past = values[:-H]
        assert np.allclose(rows[SCALE], np.mean(np.abs(past[6:] - past[:-6])))
        assert np.isclose(f["scale"][i], rows[SCALE].iloc[0])
        # the windows are on one scale whatever the series' size (ratio to each window's mean)
        assert np.abs(np.stack(rows["history"])).max() < 1
    limited = windows(panel_task(panel_csv, inputs=[{**panel_task(panel_csv)["inputs"][0], "max_origins": 5}]), frame)
    assert (limited.frame[limited.frame[SPLIT] == "train"].groupby(SERIES).size() == 5).all()


def test_global_model_trains_scores_every_series_and_predicts_long_format(panel_csv):
    task = panel_task(panel_csv, model={"ensemble": {"members": 3, "lookbacks": [4, 8], "losses": ["smape", "mase"]}},
                      inputs=[{**panel_task(panel_csv)["inputs"][0], "embed_id": 3}])
    run = deepstation.train(task, track=False)
    assert run.summary["data"]["rows"]["test"] == 4 and run.summary["data"]["rows"]["valid"] == 4
    test = run.metrics["test"]
    assert {"mape", "smape", "mase", "coverage", "msis"} <= set(test) and 0 <= test["coverage"] <= 1
    again = deepstation.load(run.dir)  # the whole ensemble from the one run folder's best.pt
    assert again.evaluate()["test"]["smape"] == pytest.approx(test["smape"], rel=1e-5)
    future = again.predict(str(panel_csv))
    assert list(future.columns) == ["id", "step", "forecast", "q0.1", "q0.5", "q0.9"]
    assert len(future) == 4 * H and list(future["step"][:H]) == [1, 2, 3, 4]
    last = panel().groupby("store")["sales"].last()
    for sid, rows in future.groupby("id"):  # forecasts in each series' own units
        assert 0.3 < rows["forecast"].iloc[0] / last[sid] < 3
    only = again.predict(str(panel_csv), ids=["s2"])
    assert set(only["id"]) == {"s2"} and len(only) == H


def test_predict_cli_names_ids_and_writes_a_file(panel_csv, tmp_path):
    run = deepstation.train(panel_task(panel_csv, trainer={"epochs": 1}), track=False)
    result = cli("predict", run.dir, panel_csv, "--ids", "s1", "s3", "-o", tmp_path / "f.csv", check=0)
    assert "8 prediction(s)" in result.stderr
    assert set(pd.read_csv(tmp_path / "f.csv")["id"]) == {"s1", "s3"}
    assert "no series 'nope'" in user_error(cli("predict", run.dir, panel_csv, "--ids", "nope"))


def test_ensemble_combines_members_by_the_median():
    from deepstation.data.prepare import prepare

    frame = panel()
    task = load_task(panel_task("x.csv", model={"ensemble": {"members": 3, "lookbacks": [4, 6, 8]}}))
    data = prepare(task, Table(frame, "stores.csv", None))
    from deepstation.models.assemble import build_model

    model = build_model(task, data.codecs, data.targets).eval()
    features = data.parts["test"].features
    with torch.no_grad():
        each = [m(model._crop(features, n))["next"] for m, n in zip(model.members, model.lookbacks)]
        combined = model(features)["next"]
    assert [m.encoders["history"].lookback for m in model.members] == [4, 6, 8]
    assert torch.allclose(combined, torch.stack(each).median(dim=0).values)
    model.train()
    assert isinstance(model(features), list)  # trained member by member


def test_losses_match_the_metrics_they_stand_for():
    """The sMAPE and MASE losses are the metrics themselves, computed in torch on the decoded forecast."""
    from deepstation.models.heads import NumberHead
    from deepstation.training import metrics

    spec = load_task(panel_task("x.csv")).outputs[0]
    shape = {"size": 3, "quantiles": [], "mean": 0.1, "std": 2.0, "forecast": {"scaling": "ratio", "log": False}}
    rng = np.random.default_rng(0)
    pred, y = torch.tensor(rng.normal(size=(5, 3)), dtype=torch.float32), torch.tensor(rng.normal(size=(5, 3)) * 0.1,
                                                                                     dtype=torch.float32)
    level, scale = torch.tensor(rng.uniform(10, 100, 5), dtype=torch.float64), torch.tensor(rng.uniform(1, 5, 5),
                                                                                          dtype=torch.float64)
    target = {"y": y, "level": level, "scale": scale}
    absolute = lambda v: ((v.double().numpy() * 2.0 + 0.1) + 1) * level.numpy()[:, None]  # noqa: E731
    expected = metrics.forecast(absolute(y), absolute(pred), scale.numpy())
    smape = NumberHead(3, shape, spec.model_copy(update={"loss": "smape"}))
    mase = NumberHead(3, shape, spec.model_copy(update={"loss": "mase"}))
    assert float(smape.loss(pred, target)) * 100 == pytest.approx(expected["smape"], rel=1e-4)
    assert float(mase.loss(pred, target)) == pytest.approx(expected["mase"], rel=1e-4)
    quantile = NumberHead(3, {**shape, "quantiles": [0.2, 0.8]}, spec.model_copy(update={"loss": "mae"}))
    out = torch.tensor(rng.normal(size=(5, 3, 3)), dtype=torch.float32)
    miss = y[:, None] - out[:, 1:]
    q = torch.tensor([0.2, 0.8]).view(1, -1, 1)
    pinball = torch.where(miss >= 0, q * miss, (q - 1) * miss).mean(dim=(1, 2))
    assert float(quantile.loss(out, target)) == pytest.approx(float(((out[:, 0] - y).abs().mean(1) + pinball).mean()))


def test_metrics_score_each_series_against_its_own_scale():
    from deepstation.training.metrics import forecast, owa

    true = np.array([[10.0, 10.0], [100.0, 100.0]])
    pred = np.array([[12.0, 10.0], [100.0, 90.0]])
    got = forecast(true, pred, np.array([2.0, 10.0]), (pred - 5, pred + 5, 0.2))
    assert got["mase"] == pytest.approx(np.mean([1.0 / 2, 5.0 / 10]))
    assert got["coverage"] == pytest.approx(0.75)  # 100 misses [85, 95]
    # MSIS: width 10 everywhere, plus 2/alpha = 10 times the 5 that 100 lies above 95, each over its series' scale
    assert got["msis"] == pytest.approx(np.mean([10 / 2, (10 + (10 + 10 * 5)) / 2 / 10]))
    assert owa({"smape": 5, "mase": 1}, {"smape": 10, "mase": 2}) == pytest.approx(0.5)


@pytest.mark.parametrize("change, task_change, expected", [
    (lambda f: f.drop(columns=["store"]), None, "column `store` (named by inputs.history.id) is missing"),
    (lambda f: f.drop(columns=["t"]), None, "column `t` (named by inputs.history.order) is missing"),
    (lambda f: pd.concat([f, f.iloc[[3]]]), None, "repeats a step"),
    (lambda f: f.drop(index=f.index[(f["store"] == "s1") & (f["t"] == 20)]), None, "series 's1', row"),
    (lambda f: f.assign(sales=f["sales"].astype(object).where(~((f["store"] == "s2") & (f["t"] == 7)), "abc")), None,
     "expected a number, got 'abc'; fix or drop that row (1 such row(s) in all) (series 's2')"),
    (lambda f: f[(f["store"] != "s0") | (f["t"] <= 15)], None, "series 's0' has 15 points"),
    (lambda f: f, {"horizon": 30}, "series 's0' has 48 points; window 8 and horizon 30"),
    (lambda f: f.assign(store=f["store"].where(f.index != 5)), None, "the series id is empty"),
])
def test_bad_panels_are_named_in_one_line(tmp_path, change, task_change, expected):
    path = tmp_path / "stores.csv"
    change(panel()).to_csv(path, index=False)
    task = panel_task(path)
    if task_change:
        task["outputs"][0].update(task_change)
    result = cli("train", write_task(tmp_path, task), "--quiet", "--no-track")
    line = user_error(result)
    assert expected in line and "stores.csv" in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing written


def test_dated_panels_check_duplicates_and_gaps(tmp_path):
    frame = panel().drop(columns=["t"])
    frame["week"] = pd.Timestamp("2020-01-06") + pd.to_timedelta((panel()["t"] - 1) * 7, unit="D")
    inputs = [{**panel_task("x")["inputs"][0], "date": "week", "order": None}]
    del inputs[0]["order"]
    for bad, expected in [(pd.concat([frame, frame.iloc[[0]]]), "appears twice"),
                          (frame.drop(index=frame.index[(frame["store"] == "s3") & (frame["week"] == "2020-03-02")]),
                           "series 's3', row")]:
        path = tmp_path / "weekly.csv"
        bad.to_csv(path, index=False)
        assert expected in user_error(cli("train", write_task(tmp_path, panel_task(path, inputs=inputs)), "--no-track"))
    path = tmp_path / "weekly.csv"
    frame.to_csv(path, index=False)
    run = deepstation.train(panel_task(path, inputs=inputs, trainer={"epochs": 1}), track=False)
    future = run.predict(str(path))
    assert list(future.columns[:3]) == ["id", "step", "date"]
    last = frame[frame["store"] == "s0"]["week"].max()
    assert future["date"].iloc[0] == last + pd.Timedelta(days=7)


def test_short_series_are_skipped_with_a_warning_when_asked(tmp_path):
    path = tmp_path / "stores.csv"
    frame = panel()
    frame[(frame["store"] != "s0") | (frame["t"] <= 15)].to_csv(path, index=False)
    result = cli("train", write_task(tmp_path, panel_task(path, data={"on_bad_sample": "skip"},
                                                          trainer={"epochs": 1})), "--json", "--no-track", check=0)
    assert "skipped 1 series shorter than 20 points: s0" in result.stderr
    summary = last_json(result.stdout)
    assert summary["data"]["rows"]["test"] == 3 and summary["data"]["skipped_series"] == ["s0"]


@pytest.mark.parametrize("change, expected", [
    (lambda t: t["inputs"][0].pop("window"), "inputs.history.season: only a forecasting input (with `window`)"),
    (lambda t: t.update(inputs=[{**t["inputs"][0], "embed_id": 2, "id": None}]), "needs `id`"),
    (lambda t: t.update(model={"ensemble": {"lookbacks": [50]}}), "model.ensemble.lookbacks: 50 is longer"),
    (lambda t: t["outputs"][0].update(quantiles=[0.9, 0.1]), "increasing order"),
])
def test_bad_forecasting_config(tmp_path, change, expected):
    task = panel_task("stores.csv")
    change(task)
    assert expected in user_error(cli("train", write_task(tmp_path, task), "--no-track"))


@pytest.mark.slow
def test_m4_weekly_example_runs_end_to_end(tmp_path):
    """The shipped example on all 359 series, a few epochs: every series scored, OWA beside the references."""
    from deepstation.config import load_task as load

    from conftest import ROOT

    task = load(ROOT / "examples" / "m4-weekly.yaml")
    result = cli("compare", write_task(tmp_path, task.model_dump(mode="json")), "--json", "--epochs", "3", check=0)
    out = last_json(result.stdout)
    assert out["deep"]["metrics"]["test"]["owa"] > 0 and len(out["references"]) == 5
    naive2 = next(r for r in out["references"] if r["name"] == "naive2")["metrics"]["test"]
    assert naive2["smape"] == pytest.approx(9.161, abs=0.001) and naive2["mase"] == pytest.approx(2.777, abs=0.001)


def test_min_history_pads_short_windows_with_the_first_value(panel_csv):
    frame = panel()
    raw = panel_task(panel_csv, inputs=[{**panel_task(panel_csv)["inputs"][0], "min_history": 3}])
    w = windows(raw, frame).frame
    s0 = w[w[SERIES] == "s0"]
    values = frame[frame["store"] == "s0"].sort_values("t")["sales"].to_numpy()
    assert len(s0[s0[SPLIT] == "train"]) == len(values) - 3 - 3 * H + 1  # origins from the 3rd point on
    first = s0.iloc[0]
    window = (first["history"][:, 0] + 1) * first[LEVEL]
    assert np.allclose(window, [values[0]] * (W - 3) + list(values[:3]))  # padded on the left
    assert np.isclose(first[LEVEL], window.mean())


def test_a_hybrid_adds_the_network_to_a_seasonal_naive_forecast():
    """model.base: with the network's output at zero, the forecast is the seasonal naive one, in the series' units."""
    from deepstation.data.prepare import prepare
    from deepstation.models.assemble import build_model
    from deepstation.training.evaluate import run_batches
    from deepstation.training.device import plan

    frame = panel()
    task = load_task(panel_task("x.csv", model={"base": "seasonal_naive", "encoders": {"history": {"kind": "mlp"}}}))
    data = prepare(task, Table(frame, "stores.csv", None))
    model = build_model(task, data.codecs, data.targets)
    head = model.heads["next"].linear
    torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
    test = data.parts["test"]
    preds, _ = run_batches(model, test.features, plan("cpu", "fp32"), 64)
    codec = data.targets["next"]
    forecast = codec.decode(preds["next"]["value"].numpy(), test.targets["next"]["level"].numpy())
    for i, history in enumerate(data.forecast["history"]):
        past = np.asarray(history)[:-H]
        assert np.allclose(forecast[i], past[-6:][:H], rtol=1e-4)  # season 6: the same weeks one season before
        assert np.allclose(preds["next"]["quantiles"][i, :, 0].numpy(), preds["next"]["value"][i].numpy())


def test_a_seasonal_base_needs_a_season_of_window():
    from deepstation.data.prepare import prepare
    from deepstation.errors import DeepstationError
    from deepstation.models.assemble import build_model

    task = load_task(panel_task("x.csv", model={"base": "seasonal_naive"},
                                inputs=[{**panel_task("x")["inputs"][0], "season": 12}]))
    data = prepare(task, Table(panel(), "stores.csv", None))
    with pytest.raises(DeepstationError, match="repeats the last season \\(12 steps\\), but a window reads 8"):
        build_model(task, data.codecs, data.targets)
