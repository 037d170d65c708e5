"""Head registry: output type -> module mapping the combined features to that output, with its loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepstation.data.targets import UNSEEN


class CategoryHead(nn.Module):
    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.linear = nn.Linear(in_dim, shape["classes"])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)

    def loss(self, out, target, reduction="mean"):
        # float(): the loss is computed in fp32 also under autocast; labels unseen in training are ignored
        return F.cross_entropy(out.float(), target, ignore_index=UNSEEN, reduction=reduction)

    def count(self, target) -> torch.Tensor:
        return (target != UNSEEN).sum()

    def predict(self, out) -> dict:
        prob = out.float().softmax(dim=-1)
        best = prob.max(dim=-1)
        return {"class": best.indices, "prob": best.values}


class NumberHead(nn.Module):
    def __init__(self, in_dim: int, shape: dict, spec):
        super().__init__()
        self.linear = nn.Linear(in_dim, shape["size"])
        self.loss_fn = F.huber_loss if spec.loss == "huber" else F.mse_loss

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z).squeeze(-1)

    def loss(self, out, target, reduction="mean"):
        return self.loss_fn(out.float(), target, reduction=reduction)

    def count(self, target) -> torch.Tensor:
        return torch.tensor(target.shape[0])

    def predict(self, out) -> dict:
        return {"value": out.float()}


HEADS = {"category": CategoryHead, "number": NumberHead}
