"""The classical series-classification references (MiniRocket + ridge, 1-NN DTW) on tiny synthetic sets: sine
against square waves well above chance, the same labels from the same seed, unequal-length multivariate series and
series shorter than MiniRocket's kernels padded, the DTW budget choosing a window or leaving DTW out, and a reference
that cannot run left out with one line on stderr."""
import numpy as np
import pytest

from deepstation.baselines import classify
from deepstation.baselines.classify import REFERENCES, dtw_window, series_references


def _waves(n, seed, lengths=(64, 64), channels=1):
    """n series per class: a sine (label "sine") or a square wave ("square") of random period, phase and length,
    with noise; each further channel the same wave a quarter period later."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in ("sine", "square"):
        for _ in range(n):
            t = np.arange(rng.integers(lengths[0], lengths[1] + 1))[:, None]
            phase = rng.uniform(0, 2 * np.pi) - np.arange(channels) * np.pi / 2
            wave = np.sin(2 * np.pi * t / rng.uniform(12, 20) + phase)
            if label == "square":
                wave = np.sign(wave)
            x = wave + rng.normal(0, 0.3, (len(t), channels))
            xs.append(x)
            ys.append(label)
    order = rng.permutation(len(xs))
    return [xs[i] for i in order], [ys[i] for i in order]


def _accuracy(found, truth):
    return {r["name"]: float(np.mean(r["prediction"] == np.asarray(truth))) for r in found}


def test_both_references_tell_sines_from_squares():
    train_x, train_y = _waves(10, seed=0)
    test_x, test_y = _waves(10, seed=1)
    found = series_references(train_x, train_y, test_x)
    assert [r["name"] for r in found] == list(REFERENCES)
    for r in found:
        assert r["prediction"].shape == (len(test_x),) and set(r["prediction"]) <= {"sine", "square"}
        assert isinstance(r["description"], str) and r["description"] and "\n" not in r["description"]
        assert r["seconds"] >= 0
    accuracy = _accuracy(found, test_y)
    assert accuracy["minirocket"] >= 0.9 and accuracy["dtw"] >= 0.9, accuracy  # chance is 0.5
    assert "full warping window" in found[1]["description"] and "padded" not in found[0]["description"]


def test_same_seed_same_labels_and_labels_come_back_as_strings():
    train_x, train_y = _waves(10, seed=2)
    test_x, _ = _waves(10, seed=3)
    numeric = [1 if y == "sine" else 2 for y in train_y]  # labels of any type are compared as strings
    first = series_references(train_x, numeric, test_x, seed=7, names="minirocket")[0]["prediction"]
    again = series_references(train_x, numeric, test_x, seed=7, names="minirocket")[0]["prediction"]
    np.testing.assert_array_equal(first, again)
    assert set(first) <= {"1", "2"}


def test_unequal_length_multivariate_series_are_padded_and_cut():
    train_x, train_y = _waves(10, seed=4, lengths=(30, 60), channels=3)
    test_x, test_y = _waves(20, seed=5, lengths=(25, 80), channels=3)  # some longer than every training series
    found = series_references(train_x, train_y, test_x)
    assert [r["name"] for r in found] == list(REFERENCES)
    longest = max(len(x) for x in train_x)
    assert max(len(x) for x in test_x) > longest
    assert f"padded with their last value to {longest} points, longer test series cut" in found[0]["description"]
    assert "MiniRocketMultivariate" in found[0]["description"]
    assert "series at their own lengths" in found[1]["description"]  # DTW warps unequal lengths as they are
    accuracy = _accuracy(found, test_y)
    # chance is 0.5; DTW sums its costs along the path, so lengths up to 3 times apart weigh on it (0.78-0.98 over
    # eight seeds, against 0.95-1.0 for MiniRocket)
    assert accuracy["minirocket"] >= 0.9 and accuracy["dtw"] >= 0.75, accuracy


def test_series_shorter_than_minirockets_kernels_are_padded():
    train_x = [np.arange(5.0) * s for s in (1, 1.1, 0.9, -1, -1.1, -0.9)]  # rising against falling, 5 points
    train_y = ["up"] * 3 + ["down"] * 3
    found = series_references(train_x, train_y, [np.arange(4.0), -np.arange(6.0)], names="minirocket")
    assert f"to {classify.MIN_LENGTH} points" in found[0]["description"]
    assert list(found[0]["prediction"]) == ["up", "down"]


def test_padding_repeats_each_series_last_value():
    padded = classify._padded([np.array([[1.0, 10], [2, 20]]), np.array([[3.0, 30], [4, 40], [5, 50], [6, 60]])], 3)
    np.testing.assert_array_equal(padded, [[[1, 2, 2], [10, 20, 20]], [[3, 4, 5], [30, 40, 50]]])


def test_dtw_finds_the_same_neighbours_as_the_textbook_recursion():
    def dtw(a, b):  # the full cost matrix, one cell at a time
        cost = np.full((len(a) + 1, len(b) + 1), np.inf)
        cost[0, 0] = 0
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                step = min(cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1])
                cost[i, j] = ((a[i - 1] - b[j - 1]) ** 2).sum() + step
        return cost[-1, -1]

    rng = np.random.default_rng(10)
    train = [rng.normal(size=(rng.integers(3, 25), 2)) for _ in range(12)]
    test = [rng.normal(size=(rng.integers(3, 25), 2)) for _ in range(8)]
    nearest = classify._dtw_kernel()(*classify._flat(train), *classify._flat(test), 1.0)
    assert list(nearest) == [int(np.argmin([dtw(q, x) for x in train])) for q in test]


def test_dtw_window_follows_the_budget(monkeypatch):
    assert dtw_window([150] * 50, [150] * 150) == 1.0  # GunPoint: 1.7e8 cells
    assert dtw_window([1460] * 100, [1460] * 100) == classify.DTW_WINDOW  # ACSF1: 2.1e10 cells, 4.3e9 in the window
    assert dtw_window([1460] * 500, [1460] * 500) is None  # 5.3e11 cells, 1.1e11 in the window
    budget = classify.DTW_BUDGET
    assert dtw_window([1000], [1000], channels=int(budget / 1e6)) == 1.0
    assert dtw_window([1000], [1000], channels=int(budget / 1e6) + 1) == classify.DTW_WINDOW
    assert dtw_window([1000], [1000], channels=int(budget / 2e5) + 1) is None
    train_x, train_y = _waves(10, seed=6)
    test_x, test_y = _waves(10, seed=7)
    monkeypatch.setattr(classify, "DTW_BUDGET", 20 * 20 * 64 * 64 / 2)  # the full window over budget, 10% within
    found = series_references(train_x, train_y, test_x, names="dtw")
    assert "window of 10% of the length" in found[0]["description"]
    assert _accuracy(found, test_y)["dtw"] >= 0.9


def test_a_reference_that_cannot_run_is_left_out_with_a_line(monkeypatch, capsys):
    def no_numba(*args):
        raise ModuleNotFoundError("No module named 'numba'")

    monkeypatch.setattr(classify, "_METHODS", {**classify._METHODS, "minirocket": no_numba})
    monkeypatch.setattr(classify, "DTW_BUDGET", 10.0)
    train_x, train_y = _waves(3, seed=8)
    assert series_references(train_x, train_y, train_x) == []
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "minirocket reference is left out: ModuleNotFoundError: No module named 'numba'" in lines[0]
    assert "dtw reference is left out" in lines[1] and "over the budget" in lines[1]


@pytest.mark.parametrize("call, message", [
    (lambda x, y: series_references(x, y, x, names="rocket"), "Unknown reference name"),
    (lambda x, y: series_references(x, y[:-1], x), "one label per training series"),
    (lambda x, y: series_references(x, y, [np.zeros((10, 2))]), "same number of channels"),
    (lambda x, y: series_references(x, y, [np.full(10, np.nan)]), "missing or infinite"),
    (lambda x, y: series_references(x, y, []), "training and test series"),
    (lambda x, y: series_references([np.zeros((0, 1))], y[:1], x), "expected [length, channels]"),
])
def test_bad_input_is_named(call, message):
    x, y = _waves(2, seed=9)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(x, y)
