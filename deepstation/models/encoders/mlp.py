"""The feed-forward network, for tables and flattened images."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import ACTIVATIONS, Covariates, register


class TableFront(nn.Module):
    """Numeric columns as they are, each category column through its own embedding, side by side."""

    def __init__(self, shape: dict):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(16, (n + 1) // 2 + 1)) for n in shape["cat_sizes"])
        self.out_dim = shape["num"] + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, x: dict) -> torch.Tensor:
        parts = [x["num"]] + [emb(x["cat"][:, j]) for j, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)


class ImageFront(nn.Module):
    def __init__(self, shape: dict):
        super().__init__()
        height, width = shape["size"]
        self.out_dim = shape["channels"] * height * width

    def forward(self, x: dict) -> torch.Tensor:
        return x["x"].flatten(1)


class SeriesFront(nn.Module):
    """The window's values, flattened, then the calendar features and id embedding, if any."""

    def __init__(self, shape: dict):
        super().__init__()
        self.covariates = Covariates(shape)
        self.out_dim = shape["length"] * shape["channels"] + self.covariates.out_dim

    def forward(self, x: dict) -> torch.Tensor:
        return torch.cat([x["x"].flatten(1), self.covariates(x)], dim=1)


FRONTS = {"table": TableFront, "image": ImageFront, "series": SeriesFront}


@register("mlp")
class MLP(nn.Module):
    def __init__(self, config, shape: dict):
        super().__init__()
        self.front = FRONTS[shape["type"]](shape)
        layers, dim = [], self.front.out_dim
        for _ in range(config.depth):
            layers += [nn.Linear(dim, config.width), ACTIVATIONS[config.activation](), nn.Dropout(config.dropout)]
            dim = config.width
        self.body = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x: dict) -> torch.Tensor:
        return self.body(self.front(x))
