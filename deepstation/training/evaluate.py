"""Run a model over a split and score it: loss and each output's metrics, in the output's own units."""
from __future__ import annotations

import numpy as np
import torch

from deepstation.training import metrics
from deepstation.training.tensors import rows, take


@torch.no_grad()
def forward_all(model, features: dict, plan, batch_size: int) -> dict:
    """Outputs for every row, in order; batches keep memory bounded."""
    model.eval()
    n = rows(features)
    chunks: dict[str, list] = {}
    for start in range(0, n, batch_size):
        with plan.autocast():
            out = model(take(features, slice(start, start + batch_size)))
        for name, value in out.items():
            chunks.setdefault(name, []).append(value.float())
    return {name: torch.cat(parts) for name, parts in chunks.items()}


@torch.no_grad()
def score(model, outputs: dict, targets: dict, codecs: dict) -> dict:
    n_out = len(model.heads)
    result, total = {}, 0.0
    for name, head in model.heads.items():
        y, out = targets[name], outputs[name]
        total += float(head.loss(out, y, reduction="sum")) / max(int(head.count(y)), 1)
        kind = codecs[name].shape()["type"]
        for metric, value in SCORERS[kind](head.predict(out), y, codecs[name]).items():
            result[metrics.key(name, metric, n_out)] = value
    return {"loss": total, **result}


def evaluate(model, part, plan, batch_size: int, codecs: dict) -> dict:
    return score(model, forward_all(model, part.features, plan, batch_size), part.targets, codecs)


def _category(pred, y, codec) -> dict:
    return metrics.category(y.cpu().numpy(), pred["class"].cpu().numpy(), codec.shape()["classes"])


def _number(pred, y, codec) -> dict:
    return metrics.number(codec.decode(y.cpu().numpy()), codec.decode(pred["value"].cpu().numpy()))


SCORERS = {"category": _category, "number": _number}
