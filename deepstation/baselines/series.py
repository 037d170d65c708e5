"""Series: hand-picked features for forecasting (lags, rolling means, calendar dummies -> ridge regression) and
for classifying whole series (summary statistics -> random forest). The classical forecasting references (naive,
seasonal naive, Naive2, ETS, Theta) are in deepstation.baselines.references."""
from __future__ import annotations

import numpy as np


class LagRegression:
    description = "lags, rolling means (3, 6, 12) and calendar dummies of the window -> ridge regression"

    def __init__(self, task):
        pass

    def _features(self, raw: dict) -> np.ndarray:
        x = raw["x"][:, :, 0]  # the window, relative to its level (as the deep model sees it)
        rolling = [x[:, -k:].mean(axis=1, keepdims=True) for k in (3, 6, 12) if k <= x.shape[1]]
        return np.hstack([x, *rolling, raw["cal"]])

    def fit(self, raw: dict, target: np.ndarray) -> "LagRegression":
        from sklearn.linear_model import RidgeCV

        self.model = RidgeCV(alphas=np.logspace(-4, 2, 13)).fit(self._features(raw), target[:, 2:])  # [level, scale, y...]
        return self

    def predict(self, raw: dict) -> np.ndarray:
        return self.model.predict(self._features(raw))  # relative to each window's level, like the targets

    def size(self) -> int:
        return int(self.model.coef_.size + np.size(self.model.intercept_))


class SummaryForest:
    description = "per-channel summary statistics (moments, quantiles, slope, autocorrelation) -> random forest"

    def __init__(self, task):
        pass

    @classmethod
    def _features(cls, raw: dict) -> np.ndarray:
        x = raw["x"]  # [N, length, channels]; series shorter than the rest end in NaN (their padding)
        steps = (~np.isnan(x).all(axis=2)).sum(axis=1)
        if (steps == x.shape[1]).all():
            return cls._summary(x)
        return np.vstack([cls._summary(x[i:i + 1, :max(n, 1)]) for i, n in enumerate(steps)])

    @staticmethod
    def _summary(x: np.ndarray) -> np.ndarray:
        from scipy import stats

        t = np.arange(x.shape[1]) - (x.shape[1] - 1) / 2
        centred = x - x.mean(axis=1, keepdims=True)
        lag1 = (centred[:, 1:] * centred[:, :-1]).sum(1) / np.maximum((centred ** 2).sum(1), 1e-9)
        parts = [x.mean(1), x.std(1), x.min(1), x.max(1), np.median(x, 1), np.quantile(x, 0.25, 1),
                 np.quantile(x, 0.75, 1), stats.skew(x, 1), stats.kurtosis(x, 1),
                 (centred * t[None, :, None]).sum(1) / (t ** 2).sum(), np.abs(np.diff(x, axis=1)).mean(1),
                 x.argmax(1) / x.shape[1], x.argmin(1) / x.shape[1], lag1]
        return np.nan_to_num(np.hstack(parts))

    def fit(self, raw: dict, labels: np.ndarray) -> "SummaryForest":
        from sklearn.ensemble import RandomForestClassifier

        self.kind = type(labels[0])
        self.model = RandomForestClassifier(n_estimators=300, random_state=0).fit(self._features(raw),
                                                                                  labels.astype(str))
        return self

    def predict(self, raw: dict) -> np.ndarray:
        return np.asarray([self.kind(p) for p in self.model.predict(self._features(raw))], dtype=object)

    def size(self) -> int:
        return int(sum(tree.tree_.node_count for tree in self.model.estimators_))
