"""Encoders for series ([batch, length, channels]): a 1-D CNN, a GRU and a small transformer. Each gives a
vector (calendar features appended), or its time steps for a sequence output."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import ACTIVATIONS, Covariates, register


class _Series(nn.Module):
    """Shared ending: steps [batch, time, dim] -> (steps, lengths) in temporal mode, else a summary over time
    with the calendar features. Series padded to one length come with x["steps"], each one's own steps: the
    summary is then over those alone (`stride`: the steps the body's output advances per input step)."""

    stride = 1

    def finish(self, steps: torch.Tensor, x: dict):
        if self.temporal:
            lengths = torch.full((steps.shape[0],), steps.shape[1], dtype=torch.long, device=steps.device)
            return steps, lengths
        return torch.cat([self.summarise(steps, self._valid(steps, x)), self.covariates(x)], dim=1)

    def _valid(self, steps: torch.Tensor, x: dict) -> torch.Tensor | None:
        """[batch, time] True where a step is the series' own (not padding); None when every step is."""
        return _own(x["steps"], steps.shape[1], self.stride) if "steps" in x else None

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return _mean(steps, valid)


def _own(steps: torch.Tensor, length: int, stride: int = 1) -> torch.Tensor:
    """[batch, length] True at the positions that hold a series' own `steps` (of the input, `stride` of them to a
    position)."""
    own = torch.div(steps + (stride - 1), stride, rounding_mode="floor").clamp(1, length)
    return torch.arange(length, device=steps.device)[None, :] < own[:, None]


def _mean(steps: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return steps.mean(dim=1)
    weights = valid.to(steps.dtype)[:, :, None]
    return (steps * weights).sum(dim=1) / weights.sum(dim=1)


def _max(steps: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return steps.amax(dim=1)
    return steps.masked_fill(~valid[:, :, None], float("-inf")).amax(dim=1)


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
        self.pool, self.stride = config.pool, config.stride
        self.covariates = Covariates(shape)
        pooled = channels * (2 if self.pool == "meanmax" and not temporal else 1)
        self.out_dim = pooled + (0 if temporal else self.covariates.out_dim)

    def forward(self, x: dict):
        h = x["x"].transpose(1, 2)  # convolve over time
        if "steps" not in x:
            return self.finish(self.dropout(self.body(h).transpose(1, 2)), x)
        # padded series: the input and each layer's output past a series' own steps are zeroed, as the
        # convolutions' own padding, so that a padded series reads as it would alone
        h = h * _own(x["steps"], h.shape[2])[:, None, :].to(h.dtype)
        for i in range(0, len(self.body), 3):  # convolution, batch norm, activation
            h = self.body[i + 2](self.body[i + 1](self.body[i](h)))
            h = h * _own(x["steps"], h.shape[2], self.stride)[:, None, :].to(h.dtype)
        return self.finish(self.dropout(h.transpose(1, 2)), x)

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if self.pool == "max":
            return _max(steps, valid)
        if self.pool == "meanmax":
            return torch.cat([_mean(steps, valid), _max(steps, valid)], dim=1)
        return _mean(steps, valid)


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

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if valid is None:
            return steps[:, -1]  # the state after the last observed step
        last = valid.sum(dim=1) - 1  # each series' own last step
        return steps[torch.arange(steps.shape[0], device=steps.device), last]


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
        h = self.embed(x["x"]) + self.position
        if "steps" in x:  # padded series: attention and the summary over each one's own steps
            return self.finish(self.body(h, src_key_padding_mask=~self._valid(h, x)), x)
        return self.finish(self.body(h), x)
