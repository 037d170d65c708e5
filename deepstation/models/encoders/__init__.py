"""Encoder registry: `kind` -> module class. An encoder takes (config, input shape) and sets `out_dim`."""
from __future__ import annotations

from torch import nn

ENCODERS: dict[str, type] = {}
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def register(kind: str):
    def add(cls):
        ENCODERS[kind] = cls
        return cls

    return add


def build_encoder(config, shape: dict) -> nn.Module:
    return ENCODERS[config.kind](config, shape)


from deepstation.models.encoders import cnn, mlp  # noqa: E402,F401  (registers the built-in kinds)
