"""Traditional data science beside the deep model: hand-picked features and a scikit-learn (or classical)
model, on the same rows and split, scored by the same metrics.

A baseline is chosen by the task's (input type, output type): see BASELINES. Each one has
fit(inputs, outputs) and predict(inputs) on the raw, unencoded values that deepstation.data.prepare reads.
A baseline whose hand-picked features cannot apply to the task's data raises NotApplicable from fit; the
comparison then says why it was skipped instead of scoring it.
"""
from __future__ import annotations

BASELINES = {
    # (input type, output type) -> "module:class"
    ("image", "category"): "deepstation.baselines.image:GlyphClassifier",
    ("image", "sequence"): "deepstation.baselines.image:SegmentAndClassify",
    ("audio", "sequence"): "deepstation.baselines.audio:MfccSegments",
    ("table", "category"): "deepstation.baselines.table:TableModel",
    ("table", "number"): "deepstation.baselines.table:TableModel",
    ("series", "number"): "deepstation.baselines.series:LagRegression",
    ("series", "category"): "deepstation.baselines.series:SummaryForest",
}


class NotApplicable(Exception):
    """Raised by a baseline's fit when its method cannot apply to the training rows; the message is one line
    saying why (e.g. the glyphs found do not line up with the captions' words)."""


def baseline_for(task):
    """The baseline class for a task with one input and one output, or None when there is none."""
    import importlib

    if len(task.inputs) != 1 or len(task.outputs) != 1:
        return None
    key = (task.inputs[0].type, task.outputs[0].type)
    if key not in BASELINES:
        return None
    module, name = BASELINES[key].split(":")
    return getattr(importlib.import_module(module), name)
