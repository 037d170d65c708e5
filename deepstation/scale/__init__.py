"""Data-parallel training: how many workers, where, and how the batch and learning rate scale with them.

`scale.workers: 1` (the default) trains in this process (deepstation.training.loop.fit); more workers, or a Ray
address, run the same loop in Ray Train workers (deepstation.scale.ray), one DDP process each. Nothing here imports
Ray or torch: `layout` is plain arithmetic on the task, so it is tested and reported the same way for both paths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

INSTALL = "pip install 'deepstation[cluster]'"


@dataclass(frozen=True)
class Layout:
    workers: int
    gpus_per_worker: float
    address: str | None       # an existing Ray cluster; None: a local one started for the run
    batch: str                # global | per_worker (scale.batch)
    per_worker_batch: int     # rows each worker takes per optimiser step
    global_batch: int         # rows per optimiser step, all workers together
    learning_rate: float      # trainer.learning_rate after scale.lr_scaling
    lr_scaling: str
    note: str = ""            # why the layout differs from what was asked, if it does

    @property
    def distributed(self) -> bool:
        return self.workers > 1 or self.address is not None

    def trainer(self, cfg):
        """The trainer section each worker runs: its share of the batch and the scaled learning rate."""
        return cfg.model_copy(update={"batch_size": self.per_worker_batch, "learning_rate": self.learning_rate})

    def summary(self, restarts: int = 0, device: str | None = None) -> dict:
        """summary.json's `scale`: what ran, so a run says how its batch and learning rate were made."""
        out = {"workers": self.workers, "gpus_per_worker": self.gpus_per_worker, "batch": self.batch,
               "global_batch": self.global_batch, "per_worker_batch": self.per_worker_batch,
               "learning_rate": self.learning_rate, "lr_scaling": self.lr_scaling, "restarts": restarts,
               "ray": self.distributed}
        if self.distributed:
            out["address"] = self.address or "local"
            out["worker_device"] = device
        if self.note:
            out["note"] = self.note
        return out


def layout(task, device_type: str, gpus_here: float) -> Layout:
    """The task's `scale` section resolved against a machine (or cluster) with `gpus_here` GPUs, for a trainer
    whose device is of type `device_type` (cuda, cpu, mps)."""
    scale, cfg = task.scale, task.trainer
    gpus = scale.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if device_type == "cuda" else 0.0
    note, workers = "", scale.workers
    if workers == "auto":  # one worker per GPU (per gpus_per_worker GPUs); none: this process, on the CPU
        workers = int(gpus_here // gpus) if gpus > 0 else 0
        if workers < 1:
            why = "found no GPU" if not gpus_here else f"uses GPUs only, and the trainer's device is {device_type}"
            workers, gpus, note = 1, 0.0, f"workers: auto {why}; trained in one process"
    if scale.batch == "global":  # trainer.batch_size split across workers: the same optimisation as one process
        per_worker = math.ceil(cfg.batch_size / workers)
    else:
        per_worker = cfg.batch_size
    global_batch = per_worker * workers
    growth = global_batch / cfg.batch_size  # ~1 with batch: global, `workers` with per_worker
    factor = {"none": 1.0, "linear": growth, "sqrt": math.sqrt(growth)}[scale.lr_scaling]
    if scale.batch == "global":  # the rows per step are those of one process: the rate stays as written
        factor = 1.0
    return Layout(workers=workers, gpus_per_worker=float(gpus), address=scale.ray_address, batch=scale.batch,
                  per_worker_batch=per_worker, global_batch=global_batch, learning_rate=cfg.learning_rate * factor,
                  lr_scaling=scale.lr_scaling, note=note)
