"""Learning-rate schedules as pure functions of the step: nothing to save, resume is exact."""
from __future__ import annotations

import math

ONECYCLE_WARMUP = 0.3   # share of the steps spent rising
ONECYCLE_START = 1 / 25  # starting rate relative to the peak
ONECYCLE_END = 1e-4      # final rate relative to the peak


def learning_rate(kind: str, base: float, step: int, total: int) -> float:
    progress = min(step / max(total, 1), 1.0)
    if kind == "constant":
        return base
    if kind == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * progress))
    if kind == "onecycle":
        if progress < ONECYCLE_WARMUP:
            return base * (ONECYCLE_START + (1 - ONECYCLE_START) * progress / ONECYCLE_WARMUP)
        down = (progress - ONECYCLE_WARMUP) / (1 - ONECYCLE_WARMUP)
        return base * (ONECYCLE_END + (1 - ONECYCLE_END) * 0.5 * (1 + math.cos(math.pi * down)))
    raise ValueError(f"unknown schedule {kind!r}")
