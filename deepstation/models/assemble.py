"""Put a task's model together: an encoder per input, a concatenating combiner, a head per output."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import build_encoder
from deepstation.models.heads import HEADS


class TaskModel(nn.Module):
    """Encoders -> concatenation -> combiner -> heads. With a sequence output the one encoder runs in temporal
    mode: sequence heads read its time steps, the other heads their mean."""

    def __init__(self, encoders: dict, combiner: nn.Module, heads: dict, temporal: bool = False):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.combiner = combiner
        self.heads = nn.ModuleDict(heads)
        self.temporal = temporal

    def forward(self, features: dict) -> dict:
        if self.temporal:
            (name, encoder), = self.encoders.items()
            steps, lengths = encoder(features[name])
            z = self.combiner(_mean_over_time(steps, lengths))
            return {n: head((steps, lengths)) if head.temporal else head(z) for n, head in self.heads.items()}
        z = torch.cat([enc(features[name]) for name, enc in self.encoders.items()], dim=1)
        z = self.combiner(z)
        return {name: head(z) for name, head in self.heads.items()}

    def loss(self, out: dict, targets: dict) -> torch.Tensor:
        return sum(head.loss(out[name], targets[name]) for name, head in self.heads.items())


def build_model(task, codecs: dict, targets: dict) -> TaskModel:
    temporal = any(HEADS[o.type].temporal for o in task.outputs)
    encoders = {i.name: build_encoder(task.encoder_for(i.name), codecs[i.name].shape(), temporal)
                for i in task.inputs}
    dim = sum(e.out_dim for e in encoders.values())
    c = task.model.combiner
    if c.width:
        combiner = nn.Sequential(nn.Linear(dim, c.width), nn.ReLU(), nn.Dropout(c.dropout))
        vector_dim = c.width
    else:
        combiner, vector_dim = nn.Identity(), dim
    heads = {o.name: HEADS[o.type](dim if HEADS[o.type].temporal else vector_dim, targets[o.name].shape(), o)
             for o in task.outputs}
    return TaskModel(encoders, combiner, heads, temporal)


def _mean_over_time(steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = (torch.arange(steps.shape[1], device=steps.device)[None, :] < lengths[:, None]).to(steps.dtype)
    return (steps * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(steps.dtype)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
