"""A small convolutional network for images: blocks of conv-norm-activation, halving the size, doubling channels.

For a sequence output (a caption read left to right) it keeps the width as time: later blocks pool only the
height, the columns become time steps, and a bidirectional GRU gives each step the context of its neighbours
(the CRNN of text recognition)."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import ACTIVATIONS, register

WIDTH_POOLS = 2  # in temporal mode, blocks after these keep the width: enough time steps for CTC


@register("cnn", temporal=True)
class CNN(nn.Module):
    def __init__(self, config, shape: dict, temporal: bool = False):
        super().__init__()
        channels, (height, width) = shape["channels"], shape["size"]
        layers = []
        for i in range(config.depth):
            out = config.width * 2 ** min(i, 3)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       ACTIVATIONS[config.activation]()]
            pool_h = 2 if height >= 2 else 1  # pool while there is something left to pool
            pool_w = 2 if width >= 2 and not (temporal and i >= WIDTH_POOLS) else 1
            if (pool_h, pool_w) != (1, 1):
                layers.append(nn.MaxPool2d((pool_h, pool_w)))
                height, width = height // pool_h, width // pool_w
            channels = out
        self.temporal = temporal
        if temporal:
            self.body = nn.Sequential(*layers)
            self.dropout = nn.Dropout(config.dropout)
            self.rnn = nn.GRU(channels * height, channels, batch_first=True, bidirectional=True)
            self.out_dim = 2 * channels
        else:
            self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout))
            self.out_dim = channels

    def forward(self, x: dict):
        f = self.body(x["x"])
        if not self.temporal:
            return f
        steps = self.dropout(f.permute(0, 3, 1, 2).flatten(2))  # [batch, width, channels * height]
        steps, _ = self.rnn(steps)
        lengths = torch.full((steps.shape[0],), steps.shape[1], dtype=torch.long, device=steps.device)
        return steps, lengths
