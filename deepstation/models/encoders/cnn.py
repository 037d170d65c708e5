"""A small convolutional network for images: blocks of conv-norm-activation, halving the size, doubling channels."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import ACTIVATIONS, register


@register("cnn")
class CNN(nn.Module):
    def __init__(self, config, shape: dict):
        super().__init__()
        channels, (height, width) = shape["channels"], shape["size"]
        layers = []
        for i in range(config.depth):
            out = config.width * 2 ** min(i, 3)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       ACTIVATIONS[config.activation]()]
            if min(height, width) >= 2:  # pool while there is something left to pool
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout)]
        self.body = nn.Sequential(*layers)
        self.out_dim = channels

    def forward(self, x: dict) -> torch.Tensor:
        return self.body(x["x"])
