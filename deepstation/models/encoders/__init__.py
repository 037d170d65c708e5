"""Encoder registry: `kind` -> module class. An encoder takes (config, input shape, temporal) and sets `out_dim`.

Called with temporal=False it returns a vector per row [batch, out_dim]; with temporal=True (for sequence
outputs) it returns its time steps and their counts: ([batch, steps, out_dim], [batch]). Kinds that can do
that list themselves in TEMPORAL."""
from __future__ import annotations

from torch import nn

ENCODERS: dict[str, type] = {}
TEMPORAL: set[str] = set()
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def register(kind: str, temporal: bool = False):
    def add(cls):
        ENCODERS[kind] = cls
        if temporal:
            TEMPORAL.add(kind)
        return cls

    return add


class Covariates(nn.Module):
    """What a series encoder reads beside the values: the calendar features of the origin and, with
    `embed_id`, a learned embedding of the series' id."""

    def __init__(self, shape: dict):
        super().__init__()
        embed = shape.get("embed") or 0
        self.embedding = nn.Embedding(shape["ids"], embed) if embed else None
        self.out_dim = shape["calendar"] + embed

    def forward(self, x: dict):
        import torch

        if self.embedding is None:
            return x["cal"]
        return torch.cat([x["cal"], self.embedding(x["id"])], dim=1)


def build_encoder(config, shape: dict, temporal: bool = False) -> nn.Module:
    if temporal:
        return ENCODERS[config.kind](config, shape, temporal=True)
    return ENCODERS[config.kind](config, shape)


from deepstation.models.encoders import audio, cnn, mlp, nbeats, series  # noqa: E402,F401  (registers the built-in kinds)
