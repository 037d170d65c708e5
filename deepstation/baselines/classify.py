"""The classical references that every series-classification comparison reports, as the UCR/UEA literature runs
them: MiniRocket features with a ridge classifier (Dempster et al.), and the one-nearest-neighbour classifier under
dynamic time warping (1-NN DTW), the archive's long-standing benchmark.

series_references(train_x, train_y, test_x) returns one entry per reference with its labels for every test series.
Series may differ in length. MiniRocket sees every series padded with its last value to the longest training length
(at least the 9 points of its kernels), longer test series cut to it; DTW warps series of different lengths as they
are. 1-NN DTW runs only within a time budget, in a warping window when the full one is too dear. A reference that
cannot run (numba missing, a failed fit) is left out with one line on stderr, so a comparison never fails on it.
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

REFERENCES = ("minirocket", "dtw")
MIN_LENGTH = 9  # MiniRocket's longest kernel spans 9 points
# 1-NN DTW fills one cost matrix per (test, train) pair: test length x train length x channels cells, about 20% of
# them inside the window. The kernel below, with early abandoning, did 3-5e8 cells a second on one core here (GunPoint,
# full window: 1.7e8 cells in 0.4 s; ACSF1 in the window: 4.3e9 in 14 s; PLAID in the window: 6.1e9 in 12 s), so the
# budget is about 15-25 s of DTW.
DTW_BUDGET = 8e9
DTW_WINDOW = 0.1  # over budget: a Sakoe-Chiba band of 10% of the longer series either side of the diagonal


def series_references(train_x, train_y, test_x, seed: int = 0, names=None) -> list[dict]:
    """Fit each reference on the training series (float arrays [length, channels], or [length] for one channel)
    and their labels, and label every test series. Returns one dict per name that could run, in order:
    {"name", "description" (one line), "prediction" (array of str labels, one per test series),
    "seconds" (wall time to fit and predict)}."""
    names = REFERENCES if names is None else (names,) if isinstance(names, str) else tuple(names)
    unknown = [name for name in names if name not in _METHODS]
    if unknown:
        raise ValueError(f"Unknown reference name(s) {unknown}; available names are: {', '.join(REFERENCES)}")
    train = [_checked(x, i, "train_x") for i, x in enumerate(train_x)]
    test = [_checked(x, i, "test_x") for i, x in enumerate(test_x)]
    if not train or not test:
        raise ValueError(f"series_references needs training and test series; received {len(train)} training and "
                         f"{len(test)} test series")
    labels = np.asarray([str(label) for label in train_y], dtype=object)
    if len(labels) != len(train):
        raise ValueError(f"Received {len(labels)} labels in `train_y` for {len(train)} series in `train_x`; "
                         f"expected one label per training series")
    channels = {x.shape[1] for x in train + test}
    if len(channels) > 1:
        raise ValueError(f"Every series needs the same number of channels; received {sorted(channels)}")

    found = []
    for name in names:
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sktime's deprecation and soft-dependency chatter
                prediction, description = _METHODS[name](train, labels, test, seed)
        except Exception as e:  # noqa: BLE001 - a reference that cannot run must not stop the comparison
            why = e if isinstance(e, _LeftOut) else f"{type(e).__name__}: {e}"
            print(f"warning: the {name} reference is left out: {why}", file=sys.stderr)
            continue
        found.append({"name": name, "description": description,
                      "prediction": np.asarray([str(p) for p in prediction], dtype=object),
                      "seconds": time.perf_counter() - began})
    return found


def dtw_window(train_lengths, test_lengths, channels: int = 1) -> float | None:
    """The warping window 1-NN DTW runs with on these series: 1.0 (the full window) when its cells fit DTW_BUDGET,
    DTW_WINDOW when the band's do, None when even those are over budget."""
    cells = float(np.sum(train_lengths, dtype=np.float64)) * float(np.sum(test_lengths, dtype=np.float64)) * channels
    if cells <= DTW_BUDGET:
        return 1.0
    if cells * min(1.0, 2 * DTW_WINDOW) <= DTW_BUDGET:
        return DTW_WINDOW
    return None


class _LeftOut(Exception):
    """A reference that does not run on this set, for a reason worth one line."""


def _checked(x, index: int, argument: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"Series {index} of `{argument}` has shape {x.shape}; expected [length, channels] with "
                         f"at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"Series {index} of `{argument}` holds {int((~np.isfinite(x)).sum())} missing or infinite "
                         f"value(s); fill the gaps before classifying")
    return x


def _padded(series: list[np.ndarray], length: int) -> np.ndarray:
    """[n, channels, length] (sktime's numpy3D): each series cut to `length` or padded with its last value."""
    out = np.empty((len(series), series[0].shape[1], length), dtype=np.float64)
    for i, x in enumerate(series):
        x = x[:length]
        out[i, :, :len(x)] = x.T
        out[i, :, len(x):] = x[-1][:, None]
    return out


def _minirocket(train, labels, test, seed):
    """MiniRocket's 9,996 features (MiniRocketMultivariate for more than one channel), standardised, into a ridge
    classifier whose penalty is chosen by leave-one-out among 10 values from 1e-3 to 1e3, as in the ROCKET papers."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    try:
        from sktime.transformations.rocket import MiniRocket, MiniRocketMultivariate
    except ImportError:  # older sktime keeps them under transformations.panel
        from sktime.transformations.panel.rocket import MiniRocket, MiniRocketMultivariate

    length = max(MIN_LENGTH, max(len(x) for x in train))
    x_train, x_test = _padded(train, length), _padded(test, length)
    multivariate = x_train.shape[1] > 1
    kind = MiniRocketMultivariate if multivariate else MiniRocket
    transform = kind(num_kernels=10_000, random_state=seed, n_jobs=1).fit(x_train)
    model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    model.fit(np.asarray(transform.transform(x_train), dtype=np.float64), labels)
    prediction = model.predict(np.asarray(transform.transform(x_test), dtype=np.float64))
    description = (f"{kind.__name__} features (sktime, 9,996) -> standardised ridge classifier "
                   f"(alpha 1e-3..1e3 by leave-one-out)")
    if any(len(x) != length for x in train + test):
        description += f"; series padded with their last value to {length} points"
        if any(len(x) > length for x in test):
            description += ", longer test series cut"
    return prediction, description


def _dtw(train, labels, test, seed):
    """One nearest neighbour under DTW, all channels warped together (squared Euclidean cost per time step), each
    pair of series at its own lengths, in a window that fits the time budget."""
    window = dtw_window([len(x) for x in train], [len(x) for x in test], train[0].shape[1])
    if window is None:
        cells = float(sum(len(x) for x in train)) * sum(len(x) for x in test) * train[0].shape[1]
        raise _LeftOut(f"{len(train)} x {len(test)} series need {cells:.1e} DTW cells, over the budget of "
                       f"{DTW_BUDGET:.0e} even in a {DTW_WINDOW:.0%} window")
    nearest = _dtw_kernel()(*_flat(train), *_flat(test), window)
    where = "full warping window" if window >= 1 else f"Sakoe-Chiba window of {window:.0%} of the length"
    if len({len(x) for x in train + test}) > 1:
        where += ", series at their own lengths"
    return labels[nearest], f"1-nearest neighbour under DTW, {where}"


def _flat(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All series stacked into one [total length, channels] array, and where each starts (n + 1 offsets)."""
    starts = np.zeros(len(series) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(x) for x in series])
    return np.ascontiguousarray(np.concatenate(series), dtype=np.float64), starts


def _nearest_dtw(train, train_starts, test, test_starts, window):
    """For every test series, the index of the training series nearest under DTW (ties: the first). The band
    follows the diagonal of each (test, train) pair, `window` times the longer length either side (>= 1 for the
    full window), and a pair is abandoned as soon as a whole row of its cost matrix exceeds the best so far."""
    n_test, n_train, channels = len(test_starts) - 1, len(train_starts) - 1, train.shape[1]
    longest = 0
    for s in range(n_train):
        longest = max(longest, train_starts[s + 1] - train_starts[s])
    previous, current = np.empty(longest + 1), np.empty(longest + 1)
    nearest = np.zeros(n_test, dtype=np.int64)
    for q in range(n_test):
        y0, n = test_starts[q], test_starts[q + 1] - test_starts[q]
        best = np.inf
        for s in range(n_train):
            x0, m = train_starts[s], train_starts[s + 1] - train_starts[s]
            slope = m / n
            radius = float(max(m, n))
            if window < 1:
                radius = max(np.ceil(window * max(m, n)), np.ceil(slope))
            previous[:m + 1] = np.inf
            previous[0] = 0.0
            abandoned = False
            for i in range(1, n + 1):  # rows: test points; columns: training points
                current[:m + 1] = np.inf
                lo = max(1, int(np.floor(i * slope - radius)))
                hi = min(m, int(np.ceil(i * slope + radius)))
                row_best = np.inf
                for j in range(lo, hi + 1):
                    cost = 0.0
                    for k in range(channels):
                        d = test[y0 + i - 1, k] - train[x0 + j - 1, k]
                        cost += d * d
                    step = min(previous[j - 1], previous[j], current[j - 1])
                    current[j] = cost + step
                    row_best = min(row_best, current[j])
                if row_best >= best:
                    abandoned = True
                    break
                previous, current = current, previous
            if not abandoned and previous[m] < best:
                best = previous[m]
                nearest[q] = s
    return nearest


_COMPILED = []


def _dtw_kernel():
    """_nearest_dtw compiled by numba (cached on disk after the first call), imported only when DTW runs."""
    if not _COMPILED:
        import numba

        _COMPILED.append(numba.njit(cache=True)(_nearest_dtw))
    return _COMPILED[0]


_METHODS = {"minirocket": _minirocket, "dtw": _dtw}
