"""Metrics and schedules against references (scikit-learn, closed forms)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

from deepstation.training import metrics
from deepstation.training.schedule import learning_rate


def test_category_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    m = metrics.category(true, pred, 5)
    assert m["accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(true, pred, average="macro"))


def test_unseen_labels_count_as_misses():
    m = metrics.category(np.array([0, 1, -1, -1]), np.array([0, 1, 0, 1]), 2)
    assert m["accuracy"] == 0.5
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 2 / 3]))


def test_number_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    true, pred = rng.uniform(1, 10, 100), rng.uniform(1, 10, 100)
    m = metrics.number(true, pred)
    assert m["mae"] == pytest.approx(mean_absolute_error(true, pred))
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(true, pred)))
    assert m["mape"] == pytest.approx(np.mean(np.abs((pred - true) / true)) * 100)


def test_mape_leaves_out_zero_truths():
    assert metrics.number(np.array([0.0, 2.0]), np.array([1.0, 3.0]))["mape"] == pytest.approx(50.0)


def test_direction_of_improvement():
    assert metrics.improved("loss", 0.4, 0.5) and not metrics.improved("loss", 0.6, 0.5)
    assert metrics.improved("accuracy", 0.9, 0.8) and metrics.improved("kind_macro_f1", 0.9, 0.8)
    assert metrics.improved("price_mae", 1.0, 2.0) and metrics.improved("loss", 3.0, None)
    assert not metrics.improved("loss", float("nan"), None)


def test_schedules():
    assert learning_rate("constant", 0.1, 50, 100) == 0.1
    assert learning_rate("cosine", 0.1, 0, 100) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 50, 100) == pytest.approx(0.05)
    assert learning_rate("cosine", 0.1, 100, 100) == pytest.approx(0.0)
    assert learning_rate("onecycle", 0.1, 0, 100) == pytest.approx(0.1 / 25)
    assert learning_rate("onecycle", 0.1, 30, 100) == pytest.approx(0.1)
    assert learning_rate("onecycle", 0.1, 100, 100) == pytest.approx(0.1 * 1e-4)
