"""Put a task's model together: an encoder per input, a concatenating combiner, a head per output."""
from __future__ import annotations

import torch
from torch import nn

from deepstation.models.base import build_base
from deepstation.models.encoders import build_encoder
from deepstation.models.heads import HEADS


class TaskModel(nn.Module):
    """Encoders -> concatenation -> combiner -> heads. With a sequence output the one encoder runs in temporal
    mode: sequence heads read its time steps, the other heads their mean."""

    def __init__(self, encoders: dict, combiner: nn.Module, heads: dict, temporal: bool = False, base=None):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.combiner = combiner
        self.heads = nn.ModuleDict(heads)
        self.temporal = temporal
        self.base = base  # a classical forecast the (single, number) head's output is added to; None: none

    def forward(self, features: dict) -> dict:
        if self.temporal:
            (name, encoder), = self.encoders.items()
            steps, lengths = encoder(features[name])
            z = self.combiner(_mean_over_time(steps, lengths))
            return {n: head((steps, lengths)) if head.temporal else head(z) for n, head in self.heads.items()}
        z = torch.cat([enc(features[name]) for name, enc in self.encoders.items()], dim=1)
        z = self.combiner(z)
        out = {name: head(z) for name, head in self.heads.items()}
        if self.base is not None:
            (name, value), = out.items()
            base = self.base(features)  # [batch, horizon]; quantile outputs [batch, 1 + quantiles, horizon]
            out[name] = value + (base.unsqueeze(1) if value.ndim == 3 else base.reshape(value.shape))
        return out

    def loss(self, out: dict, targets: dict) -> torch.Tensor:
        return sum(head.loss(out[name], targets[name]) for name, head in self.heads.items())


class EnsembleModel(nn.Module):
    """K members with their own weights (and losses, and lookbacks into the window), trained together: in training
    the loss is their mean, so each member's gradient is its own; in evaluation the forecasts (and quantiles) are
    combined by their median."""

    def __init__(self, members: list, lookbacks: list, series_input: str):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.lookbacks, self.series_input = lookbacks, series_input

    @property
    def heads(self):  # what evaluation reads: the heads' predict() and loss() (the first member's loss)
        return self.members[0].heads

    def forward(self, features: dict):
        outs = [member(self._crop(features, n)) for member, n in zip(self.members, self.lookbacks)]
        if self.training:
            return outs
        return {name: torch.quantile(torch.stack([o[name].float() for o in outs]), 0.5, dim=0) for name in outs[0]}

    def loss(self, out, targets: dict) -> torch.Tensor:
        if isinstance(out, list):
            return sum(m.loss(o, targets) for m, o in zip(self.members, out)) / len(out)
        return self.members[0].loss(out, targets)

    def _crop(self, features: dict, lookback):
        if lookback is None:
            return features
        x = features[self.series_input]
        return {**features, self.series_input: {**x, "x": x["x"][:, -lookback:]}}


def build_model(task, codecs: dict, targets: dict) -> nn.Module:
    ens = task.model.ensemble
    if ens is None:
        return _single(task, codecs, targets)
    members, lookbacks = [], []
    for i in range(ens.members):  # each member built after the last: different initial weights from one seed
        member = task
        if ens.losses:
            outputs = [o.model_copy(update={"loss": ens.losses[i % len(ens.losses)]}) if o.type == "number" else o
                       for o in task.outputs]
            member = task.model_copy(update={"outputs": outputs})
        lookback = ens.lookbacks[i % len(ens.lookbacks)] if ens.lookbacks else None
        members.append(_single(member, codecs, targets, lookback))
        lookbacks.append(lookback)
    series = next(i.name for i in task.inputs if i.type == "series" and i.window)
    return EnsembleModel(members, lookbacks, series)


def _single(task, codecs: dict, targets: dict, lookback: int | None = None) -> TaskModel:
    temporal = any(HEADS[o.type].temporal for o in task.outputs)
    shapes = {i.name: dict(codecs[i.name].shape()) for i in task.inputs}
    series = next((i for i in task.inputs if getattr(i, "window", None)), None)
    out = next((o for o in task.outputs if o.type == "number"), None)
    if series is not None and out is not None:  # a forecasting encoder may give the forecast itself (nbeats)
        shapes[series.name]["forecast"] = out.horizon * (1 + len(out.quantiles or []))
        if lookback:
            shapes[series.name]["length"] = lookback
    encoders = {i.name: build_encoder(task.encoder_for(i.name), shapes[i.name], temporal) for i in task.inputs}
    direct = any(getattr(e, "direct", False) for e in encoders.values())
    dim = sum(e.out_dim for e in encoders.values())
    c = task.model.combiner
    if c.width and not direct:
        combiner = nn.Sequential(nn.Linear(dim, c.width), nn.ReLU(), nn.Dropout(c.dropout))
        vector_dim = c.width
    else:
        combiner, vector_dim = nn.Identity(), dim
    heads = {o.name: HEADS[o.type](dim if HEADS[o.type].temporal else vector_dim,
                                   {**targets[o.name].shape(), "direct": direct}, o)
             for o in task.outputs}
    return TaskModel(encoders, combiner, heads, temporal, build_base(task, codecs, targets))


def _mean_over_time(steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = (torch.arange(steps.shape[1], device=steps.device)[None, :] < lengths[:, None]).to(steps.dtype)
    return (steps * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(steps.dtype)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
