"""Head registry: output type -> module mapping the combined features to that output, with its loss.

A head's predict() turns raw outputs into predictions: tensors (category, number) or lists (sequence)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepstation.data.targets import UNSEEN


class CategoryHead(nn.Module):
    temporal = False

    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.linear = nn.Linear(in_dim, shape["classes"])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)

    def loss(self, out, target, reduction="mean"):
        # float(): the loss is computed in fp32 also under autocast; labels unseen in training are ignored
        return F.cross_entropy(out.float(), target, ignore_index=UNSEEN, reduction=reduction)

    def count(self, target) -> int:
        return int((target != UNSEEN).sum())

    def predict(self, out) -> dict:
        prob = out.float().softmax(dim=-1)
        best = prob.max(dim=-1)
        return {"class": best.indices, "prob": best.values}


class NumberHead(nn.Module):
    """A number per row, or a forecast of `horizon` numbers, and with `quantiles` one more forecast per quantile
    (trained by the pinball loss). Output [batch] (one number), [batch, horizon], or [batch, 1 + quantiles,
    horizon] (the point forecast first). An encoder that gives the forecast itself (N-BEATS) is not mapped again."""

    temporal = False

    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.size, self.quantile_levels = shape["size"], shape.get("quantiles") or []
        outputs = self.size * (1 + len(self.quantile_levels))
        self.linear = nn.Identity() if shape.get("direct") else nn.Linear(in_dim, outputs)
        self.kind = spec.loss
        self.register_buffer("levels", torch.tensor(self.quantile_levels, dtype=torch.float32), persistent=False)
        forecast = shape.get("forecast") or {}
        self.unstandardise = (shape.get("std", 1.0), shape.get("mean", 0.0))
        self.ratio, self.log = forecast.get("scaling") == "ratio", bool(forecast.get("log"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.linear(z)
        if self.quantile_levels:
            return out.reshape(out.shape[0], 1 + len(self.quantile_levels), self.size)
        return out.squeeze(-1) if self.size == 1 else out  # one value per row, or a horizon of them

    def loss(self, out, target, reduction="mean"):
        y = target["y"] if isinstance(target, dict) else target  # forecasting: y beside its level and scale
        out = out.float()
        point = out[:, 0] if self.quantile_levels else out
        per_row = self._point_loss(point, y, target)
        if self.quantile_levels:  # pinball on the standardised values: each quantile's own asymmetric error
            miss = y.unsqueeze(1) - out[:, 1:]
            levels = self.levels.view(1, -1, 1)
            per_row = per_row + torch.maximum(levels * miss, (levels - 1) * miss).mean(dim=(1, 2))
        # per row, so that a horizon of H values counts as one row
        return per_row.sum() if reduction == "sum" else per_row.mean()

    def _point_loss(self, pred, y, target) -> torch.Tensor:
        if self.kind in ("smape", "mase"):  # on the forecast in the output's own units, as the metrics score it
            pred, y = self._absolute(pred, target["level"]), self._absolute(y, target["level"])
            if self.kind == "smape":
                error = 2 * (pred - y).abs() / (pred.abs() + y.abs()).clamp(min=1e-8)
            else:
                scale = target["scale"].to(pred.dtype)
                known = torch.isfinite(scale) & (scale > 0)  # a constant series has no naive error: its level instead
                scale = torch.where(known, scale, target["level"].abs().to(pred.dtype).clamp(min=1e-8))
                error = (pred - y).abs() / scale.unsqueeze(-1)
        elif self.kind == "mse":
            error = (pred - y) ** 2
        elif self.kind == "huber":
            error = F.huber_loss(pred, y, reduction="none")
        else:
            error = (pred - y).abs()
        return error.mean(dim=-1) if error.ndim > 1 else error

    def _absolute(self, values: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        std, mean = self.unstandardise
        relative = values * std + mean
        level = level.to(values.dtype).unsqueeze(-1)
        if self.log:  # log values relative to the level: exp of their sum, kept in float range
            return torch.exp((relative + level).clamp(max=80.0))
        return (relative + 1) * level if self.ratio else relative + level

    def count(self, target) -> int:
        return int((target["y"] if isinstance(target, dict) else target).shape[0])

    def predict(self, out) -> dict:
        out = out.float()
        if self.quantile_levels:
            return {"value": out[:, 0], "quantiles": out[:, 1:].transpose(1, 2)}  # [batch, horizon, quantiles]
        return {"value": out}


class SequenceHead(nn.Module):
    """CTC over the encoder's time steps: a distribution over tokens plus a blank at every step."""

    temporal = True

    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.linear = nn.Linear(in_dim, shape["classes"])

    def forward(self, z) -> tuple:
        steps, lengths = z
        return self.linear(steps), lengths

    def loss(self, out, target, reduction="mean"):
        logits, lengths = out
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # CTC wants [time, batch, classes]
        per_row = F.ctc_loss(log_probs, target["tokens"], lengths, target["lengths"], blank=0, reduction="none",
                             zero_infinity=True)  # a text longer than the time steps cannot be aligned: no gradient
        per_row = per_row / target["lengths"].clamp(min=1)
        return per_row.sum() if reduction == "sum" else per_row.mean()

    def count(self, target) -> int:
        return int(target["lengths"].shape[0])

    def predict(self, out) -> dict:
        """Greedy decoding: the best token per step, repeats merged, blanks dropped."""
        logits, lengths = out
        best = logits.argmax(-1).cpu()
        tokens = []
        for row, n in zip(best, lengths.cpu().tolist()):
            row = torch.unique_consecutive(row[:n])
            tokens.append(row[row != 0].tolist())
        return {"tokens": tokens}


HEADS = {"category": CategoryHead, "number": NumberHead, "sequence": SequenceHead}
