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


def build_encoder(config, shape: dict, temporal: bool = False) -> nn.Module:
    if temporal:
        return ENCODERS[config.kind](config, shape, temporal=True)
    return ENCODERS[config.kind](config, shape)


from deepstation.models.encoders import audio, cnn, mlp, nbeats, series  # noqa: E402,F401  (registers the built-in kinds)
