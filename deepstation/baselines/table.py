"""Tables: the columns as they are (one-hot categories) into gradient-boosted trees."""
from __future__ import annotations

import numpy as np


class TableModel:
    description = "the columns as they are (categories one-hot) -> gradient-boosted trees"

    def __init__(self, task):
        self.category = task.outputs[0].type == "category"

    def _matrix(self, raw: dict, fit: bool) -> np.ndarray:
        cat = raw["cat"]
        if cat.shape[1] == 0:
            return raw["num"]
        if fit:
            from sklearn.preprocessing import OneHotEncoder

            self.onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(cat.astype(str))
        return np.hstack([raw["num"], self.onehot.transform(cat.astype(str))])

    def fit(self, raw: dict, target: np.ndarray) -> "TableModel":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        x = self._matrix(raw, fit=True)
        if self.category:
            self.kind = type(target[0])
            self.model = HistGradientBoostingClassifier(random_state=0).fit(x, target.astype(str))
        else:
            self.model = HistGradientBoostingRegressor(random_state=0).fit(x, target)
        return self

    def predict(self, raw: dict) -> np.ndarray:
        pred = self.model.predict(self._matrix(raw, fit=False))
        return np.asarray([self.kind(p) for p in pred], dtype=object) if self.category else pred

    def size(self) -> int:
        return int(sum(p.get_n_leaf_nodes() for trees in self.model._predictors for p in trees))
