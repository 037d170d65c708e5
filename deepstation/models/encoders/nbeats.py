"""N-BEATS (Oreshkin et al., ICLR 2020), the generic form: a stack of blocks, each an MLP that reads what the
blocks before it could not explain of the window (the backcast residual), subtracts its own backcast and adds its
part of the forecast. The encoder gives the forecast itself, so the number head does not map it again."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.encoders import Covariates, register


class Block(nn.Module):
    def __init__(self, in_dim: int, backcast: int, forecast: int, config):
        super().__init__()
        layers, dim = [], in_dim
        for _ in range(config.layers):
            layers += [nn.Linear(dim, config.width), nn.ReLU(), nn.Dropout(config.dropout)]
            dim = config.width
        self.body = nn.Sequential(*layers)
        self.backcast = nn.Linear(dim, backcast)
        self.forecast = nn.Linear(dim, forecast)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        return self.backcast(h), self.forecast(h)


@register("nbeats")
class NBeats(nn.Module):
    direct = True  # its output is the forecast (horizon x (1 + quantiles) values)

    def __init__(self, config, shape: dict):
        super().__init__()
        self.lookback = min(config.lookback or shape["length"], shape["length"])
        window = self.lookback * shape["channels"]
        self.covariates = Covariates(shape)  # calendar and id embedding, read by every block beside its residual
        self.blocks = nn.ModuleList(Block(window + self.covariates.out_dim, window, shape["forecast"], config)
                                    for _ in range(config.blocks))
        self.out_dim = shape["forecast"]

    def forward(self, x: dict) -> torch.Tensor:
        residual, calendar = x["x"][:, -self.lookback:].flatten(1), self.covariates(x)
        forecast = 0
        for block in self.blocks:
            backcast, part = block(torch.cat([residual, calendar], dim=1))
            residual = residual - backcast
            forecast = forecast + part
        return forecast
