"""Put a task's model together: an encoder per input, a concatenating combiner, a head per output."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import build_encoder
from deepstation.models.heads import HEADS


class TaskModel(nn.Module):
    def __init__(self, encoders: dict, combiner: nn.Module, heads: dict):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.combiner = combiner
        self.heads = nn.ModuleDict(heads)

    def forward(self, features: dict) -> dict:
        z = torch.cat([enc(features[name]) for name, enc in self.encoders.items()], dim=1)
        z = self.combiner(z)
        return {name: head(z) for name, head in self.heads.items()}

    def loss(self, out: dict, targets: dict) -> torch.Tensor:
        return sum(head.loss(out[name], targets[name]) for name, head in self.heads.items())


def build_model(task, codecs: dict, targets: dict) -> TaskModel:
    encoders = {i.name: build_encoder(task.encoder_for(i.name), codecs[i.name].shape()) for i in task.inputs}
    dim = sum(e.out_dim for e in encoders.values())
    c = task.model.combiner
    if c.width:
        combiner = nn.Sequential(nn.Linear(dim, c.width), nn.ReLU(), nn.Dropout(c.dropout))
        dim = c.width
    else:
        combiner = nn.Identity()
    heads = {o.name: HEADS[o.type](dim, targets[o.name].shape(), o) for o in task.outputs}
    return TaskModel(encoders, combiner, heads)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
