"""Encoders for series ([batch, length, channels]): a 1-D CNN, a GRU and a small transformer. Each gives a
vector (calendar features appended), or its time steps for a sequence output."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import ACTIVATIONS, Covariates, register


class _Series(nn.Module):
    """Shared ending: steps [batch, time, dim] -> (steps, lengths) in temporal mode, else the last step's
    summary (mean over time) with the calendar features."""

    def finish(self, steps: torch.Tensor, x: dict):
        if self.temporal:
            lengths = torch.full((steps.shape[0],), steps.shape[1], dtype=torch.long, device=steps.device)
            return steps, lengths
        return torch.cat([self.summarise(steps), self.covariates(x)], dim=1)

    def summarise(self, steps: torch.Tensor) -> torch.Tensor:
        return steps.mean(dim=1)


@register("cnn1d", temporal=True)
class CNN1d(_Series):
    def __init__(self, config, shape: dict, temporal: bool = False):
        super().__init__()
        layers, channels = [], shape["channels"]
        kernel, dilation = config.kernel, config.dilation
        for i in range(config.depth):
            out, reach = config.width * 2 ** min(i, 2), dilation ** i
            layers += [nn.Conv1d(channels, out, kernel, stride=config.stride if i == 0 else 1,
                                 padding=reach * (kernel - 1) // 2, dilation=reach, bias=False),
                       nn.BatchNorm1d(out), ACTIVATIONS[config.activation]()]
            channels = out
        self.body, self.dropout, self.temporal = nn.Sequential(*layers), nn.Dropout(config.dropout), temporal
        self.pool = config.pool
        self.covariates = Covariates(shape)
        pooled = channels * (2 if self.pool == "meanmax" and not temporal else 1)
        self.out_dim = pooled + (0 if temporal else self.covariates.out_dim)

    def forward(self, x: dict):
        steps = self.body(x["x"].transpose(1, 2)).transpose(1, 2)  # convolve over time
        return self.finish(self.dropout(steps), x)

    def summarise(self, steps: torch.Tensor) -> torch.Tensor:
        if self.pool == "max":
            return steps.amax(dim=1)
        if self.pool == "meanmax":
            return torch.cat([steps.mean(dim=1), steps.amax(dim=1)], dim=1)
        return steps.mean(dim=1)


@register("gru", temporal=True)
class GRU(_Series):
    def __init__(self, config, shape: dict, temporal: bool = False):
        super().__init__()
        self.rnn = nn.GRU(shape["channels"], config.width, num_layers=config.depth, batch_first=True,
                          dropout=config.dropout if config.depth > 1 else 0.0, bidirectional=temporal)
        self.temporal = temporal
        self.covariates = Covariates(shape)
        self.out_dim = config.width * (2 if temporal else 1) + (0 if temporal else self.covariates.out_dim)

    def forward(self, x: dict):
        steps, _ = self.rnn(x["x"])
        return self.finish(steps, x)

    def summarise(self, steps: torch.Tensor) -> torch.Tensor:
        return steps[:, -1]  # the state after the last observed step


@register("transformer", temporal=True)
class Transformer(_Series):
    def __init__(self, config, shape: dict, temporal: bool = False):
        super().__init__()
        self.embed = nn.Linear(shape["channels"], config.width)
        self.position = nn.Parameter(torch.zeros(1, shape["length"], config.width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, dim_feedforward=2 * config.width,
                                           dropout=config.dropout, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.temporal = temporal
        self.covariates = Covariates(shape)
        self.out_dim = config.width + (0 if temporal else self.covariates.out_dim)

    def forward(self, x: dict):
        return self.finish(self.body(self.embed(x["x"]) + self.position), x)
