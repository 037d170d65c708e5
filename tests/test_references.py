"""The classical forecasting references on small synthetic series: every forecast finite and of the right shape,
the naive ones exact, M4's seasonality test and Naive2 behaving as published, the fitted ones useful on a trend."""
import numpy as np
import pytest

from deepstation.baselines.references import REFERENCES, forecast_references, seasonality_test


def _monthly(n=96, level=100.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.5 * t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)


def _by_name(found):
    return {r["name"]: r for r in found}


def test_every_reference_is_finite_and_shaped_on_awkward_series():
    rng = np.random.default_rng(1)
    histories = [np.array([5.0]), np.array([1.0, 2.0]), np.array([3.0, 1, 4, 1, 5]), np.full(40, 7.0),
                 np.zeros(30), rng.normal(0, 1, 60) - 3, _monthly(), _monthly() - 150]
    found = forecast_references(histories, horizon=6, season=12)
    assert [r["name"] for r in found] == list(REFERENCES)
    for r in found:
        assert r["prediction"].shape == (len(histories), 6) and r["prediction"].dtype == np.float64
        assert np.isfinite(r["prediction"]).all(), r["name"]
        assert isinstance(r["description"], str) and "\n" not in r["description"] and r["description"]
        assert r["seconds"] >= 0
    for r in found:  # a constant series is forecast as that constant by every reference
        np.testing.assert_allclose(r["prediction"][3], 7.0)


def test_naive_and_seasonal_naive_are_exact():
    y = np.arange(1.0, 11.0)  # 1..10
    found = _by_name(forecast_references([y, np.array([4.0, 2.0])], horizon=5, season=4,
                                         names=("naive", "seasonal_naive")))
    np.testing.assert_array_equal(found["naive"]["prediction"], [[10] * 5, [2] * 5])
    # the last season (7, 8, 9, 10) repeated; a series shorter than a season falls back to naive
    np.testing.assert_array_equal(found["seasonal_naive"]["prediction"], [[7, 8, 9, 10, 7], [2] * 5])
    yearly = forecast_references([y], horizon=3, season=1, names=("seasonal_naive",))[0]
    np.testing.assert_array_equal(yearly["prediction"], [[10, 10, 10]])


def test_seasonality_test_finds_a_season_and_not_noise():
    assert seasonality_test(_monthly(), 12)
    assert not seasonality_test(np.random.default_rng(2).normal(size=120), 12)
    assert not seasonality_test(_monthly(), 1)  # no season to test
    assert not seasonality_test(_monthly(n=30), 12)  # fewer than 3 seasons
    assert not seasonality_test(np.full(60, 3.0), 12)


def test_naive2_deseasonalises_only_seasonal_series():
    noise = 50 + np.random.default_rng(3).normal(0, 1, 72)
    seasonal = _monthly()
    found = _by_name(forecast_references([noise, seasonal], horizon=12, season=12, names=("naive", "naive2")))
    naive, naive2 = found["naive"]["prediction"], found["naive2"]["prediction"]
    np.testing.assert_array_equal(naive2[0], naive[0])
    assert not np.allclose(naive2[1], naive[1])
    truth = _monthly(n=108)[-12:]  # the same series continued: Naive2 follows the season, naive cannot
    assert np.abs(naive2[1] - truth).mean() < np.abs(naive[1] - truth).mean()


def test_theta_and_ets_beat_naive_on_a_trend():
    t = np.arange(72)
    y = 10 + 2.0 * t + np.random.default_rng(4).normal(0, 0.5, 72)
    truth = 10 + 2.0 * np.arange(72, 84)
    found = _by_name(forecast_references([y], horizon=12, season=1, names=("naive", "ets", "theta")))
    error = {name: np.abs(r["prediction"][0] - truth).mean() for name, r in found.items()}
    assert error["ets"] < error["naive"] / 4
    assert error["theta"] < error["naive"] / 1.5  # theta 2 halves the trend's slope, so it lags by design


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="Unknown reference"):
        forecast_references([np.ones(5)], 3, 1, names=("arima",))
    with pytest.raises(ValueError, match="horizon"):
        forecast_references([np.ones(5)], 0, 1)
    with pytest.raises(ValueError, match="season"):
        forecast_references([np.ones(5)], 3, 0)
    with pytest.raises(ValueError, match="Series 1"):
        forecast_references([np.ones(5), np.array([1.0, np.nan])], 3, 1)
