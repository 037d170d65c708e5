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
    temporal = False

    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.size = shape["size"]
        self.linear = nn.Linear(in_dim, self.size)
        self.loss_fn = F.huber_loss if spec.loss == "huber" else F.mse_loss

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.linear(z)
        return out.squeeze(-1) if self.size == 1 else out  # one value per row, or a horizon of them

    def loss(self, out, target, reduction="mean"):
        target = target["y"] if isinstance(target, dict) else target  # forecasting: y beside its level
        if reduction == "sum":  # per row, so that a horizon of H values counts as one row
            return self.loss_fn(out.float(), target, reduction="sum") / max(self.size, 1)
        return self.loss_fn(out.float(), target, reduction=reduction)

    def count(self, target) -> int:
        return int((target["y"] if isinstance(target, dict) else target).shape[0])

    def predict(self, out) -> dict:
        return {"value": out.float()}


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
