"""Hybrid forecasting: a classical forecast read off the window itself (naive, or seasonal naive), in the target's
standardised units, that the network's output is added to. The network then learns the correction on top of a
classical method, as Smyl's ES-RNN learns on top of exponential smoothing, instead of the whole forecast."""
from __future__ import annotations

import torch
from torch import nn


class ClassicalBase(nn.Module):
    def __init__(self, kind: str, input_name: str, channel: int, season: int, horizon: int, scales: tuple):
        super().__init__()
        self.input_name, self.channel = input_name, channel
        self.in_mean, self.in_std, self.out_mean, self.out_std = scales
        period = season if kind == "seasonal_naive" else 1
        # each step repeats the value one season (naive: one step) before it, counted from the window's end
        self.register_buffer("steps", torch.tensor([-period + j % period for j in range(horizon)]), persistent=False)

    def forward(self, features: dict) -> torch.Tensor:
        x = features[self.input_name]["x"][:, :, self.channel]  # standardised like the inputs
        relative = x[:, self.steps] * self.in_std + self.in_mean   # relative to the window's level, like the targets
        return (relative - self.out_mean) / self.out_std


def build_base(task, codecs: dict, targets: dict):
    """The task's `model.base`, or None."""
    from deepstation.errors import DeepstationError

    if task.model.base == "none":
        return None
    series = next(i for i in task.inputs if i.type == "series" and i.window)
    out = next(o for o in task.outputs if o.type == "number")
    state, target = codecs[series.name].state, targets[out.name].state
    season = target["forecast"]["season"] if task.model.base == "seasonal_naive" else 1
    shortest = min([series.window, *(task.model.ensemble.lookbacks if task.model.ensemble else [])])
    if season > shortest:
        raise DeepstationError(f"model.base: seasonal_naive repeats the last season ({season} steps), but a window "
                               f"reads {shortest}; lengthen inputs.{series.name}.window (and the ensemble's lookbacks)")
    k = series.columns.index(out.column)
    scales = (state["mean"][k], state["std"][k], target["mean"], target["std"])
    return ClassicalBase(task.model.base, series.name, k, season, out.horizon, scales)
