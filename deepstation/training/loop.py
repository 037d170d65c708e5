"""The training loop, top to bottom: shuffle, batch, forward under autocast, loss, backward, step; then
validate, keep the best weights, checkpoint, and decide whether to go on.

The data is already tensors in memory (see deepstation.data.prepare), so a batch is an index into them: no
DataLoader, no worker processes, one CPU-GPU sync per epoch.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
import signal
import threading
import time
from dataclasses import dataclass

import torch

from deepstation.errors import DeepstationError, TrainingError
from deepstation.scale.sync import ALONE
from deepstation.training.evaluate import evaluate
from deepstation.training.metrics import improved
from deepstation.training.schedule import learning_rate
from deepstation.training.tensors import take, to_device


@dataclass
class Outcome:
    epochs: int        # epochs completed, resumed ones included
    best_epoch: int
    best: float        # the monitored metric at the best epoch
    stopped: str       # completed | early_stop | time_budget
    best_state: dict   # the best epoch's weights, on the CPU
    scale: dict | None = None  # how many workers trained, with which batch and learning rate (summary.json)


def make_optimizer(model, cfg) -> torch.optim.Optimizer:
    params, lr, wd = model.parameters(), cfg.learning_rate, cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def fit(model, train, valid, codecs, cfg, plan, store, progress, resume: dict | None = None, dist=ALONE) -> Outcome:
    """Train `model` on the `train` part, validating on `valid` (may be empty) after every epoch.

    store: append_metrics(record), save_checkpoint(state), save_best(weights), load_best(), flush().
    progress: start(total, done, monitor), epoch(record), close().
    resume: a checkpoint from store.save_checkpoint; training continues exactly where it stopped.
    dist: one of several data-parallel processes (deepstation.scale.sync.Group): DDP, this rank's shard of the
    rows, rank 0's validation shared, so every rank takes the same decisions; ALONE does nothing.
    """
    device = plan.device
    model.to(device)
    step_model = torch.compile(dist.wrap(model)) if cfg.compile else dist.wrap(model)
    optimizer = make_optimizer(model, cfg)
    scaler = plan.grad_scaler()
    shuffle = torch.Generator().manual_seed(cfg.seed)  # on the CPU: the same order on every device

    x_train, y_train = to_device(train.features, device), to_device(train.targets, device)
    valid_dev = type(valid)(to_device(valid.features, device), to_device(valid.targets, device), valid.rows)
    n, bs = len(train), cfg.batch_size
    steps = math.ceil(dist.rows(n) / bs)  # this process's rows: all of them, or its shard
    split = "valid" if len(valid) else "train"  # with no validation rows, the training loss picks the best epoch

    first, best, best_epoch, stale, best_state = 1, None, 0, 0, None
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        shuffle.set_state(resume["shuffle"])
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda" and "cuda_rng" in resume:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        first = int(resume["epoch"]) + 1
        best, best_epoch, stale = resume["best"], int(resume["best_epoch"]), int(resume["stale"])
        best_state = store.load_best()
    _set_lr(optimizer, learning_rate(cfg.schedule, cfg.learning_rate, (first - 1) * steps, steps * cfg.epochs))

    scheduled, scaling = cfg.schedule != "constant", scaler.is_enabled()
    began = saved_at = time.perf_counter()
    stopped, saved_epoch = "completed", first - 1
    epoch = first - 1
    progress.start(cfg.epochs, first - 1, cfg.monitor)
    # on the way out, whichever way: the background checkpoint writes finish, the progress display closes
    with Interrupts() as interrupts, _finally(store.flush, progress.close):
        for epoch in range(first, cfg.epochs + 1):
            model.train()
            started = time.perf_counter()
            order = dist.shard(torch.randperm(n, generator=shuffle)).to(device)
            losses = []
            for step in range(steps):
                if scheduled:
                    _set_lr(optimizer, learning_rate(cfg.schedule, cfg.learning_rate, (epoch - 1) * steps + step,
                                                     steps * cfg.epochs))
                index = order[step * bs:(step + 1) * bs]
                xb, yb = take(x_train, index), take(y_train, index)
                with plan.autocast():
                    loss = model.loss(step_model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                if scaling:  # fp16: scale the loss, unscale before clipping, skip steps that overflowed
                    scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                losses.append(loss.detach())
            losses = dist.mean(torch.stack(losses).float()).cpu()  # note: the epoch's one CPU-GPU sync point
            if not torch.isfinite(losses).all():
                bad = int(torch.nonzero(~torch.isfinite(losses))[0])
                kept = f"the checkpoint of epoch {saved_epoch} is kept" if saved_epoch else "no checkpoint was kept"
                raise TrainingError(
                    f"training diverged: the loss became {float(losses[bad])} at epoch {epoch}, step {bad + 1} of "
                    f"{steps}; {kept}; lower trainer.learning_rate or set trainer.grad_clip")
            seconds = time.perf_counter() - started

            record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "seconds": round(seconds, 4),
                      "samples_per_s": round(n / seconds, 1), "train": {"loss": float(losses.mean())}}
            if len(valid):
                record["valid"] = dist.rank0(evaluate, model, valid_dev, plan, cfg.eval_batch_size, codecs)
            value = _monitored(record, split, cfg.monitor)
            if improved(cfg.monitor, value, best):
                best, best_epoch, stale = value, epoch, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                store.save_best(best_state)
            else:
                stale += 1
            store.append_metrics(record)  # before the checkpoint: a resume drops lines past the checkpoint's epoch

            if cfg.patience and stale >= cfg.patience:
                stopped = "early_stop"
            elif cfg.max_minutes and dist.any(time.perf_counter() - began >= cfg.max_minutes * 60):
                stopped = "time_budget"
            progress.epoch(record)
            now = time.perf_counter()
            if (checkpoint_due(now - started, now - saved_at, cfg.checkpoint_every) or stopped != "completed"
                    or epoch == cfg.epochs):  # always the last epoch, and a stopped one
                _checkpoint(store, epoch, model, optimizer, scaler, shuffle, best, best_epoch, stale, device)
                saved_at, saved_epoch = now, epoch
            interrupts.saved = saved_epoch == epoch
            if interrupts.asked:  # a signal came while this epoch was not checkpointed: save it, then stop
                if saved_epoch != epoch:
                    _checkpoint(store, epoch, model, optimizer, scaler, shuffle, best, best_epoch, stale, device)
                raise KeyboardInterrupt
            if stopped != "completed":
                break
    return Outcome(epochs=epoch, best_epoch=best_epoch, best=best, stopped=stopped, best_state=best_state)


@contextmanager
def _finally(*calls):
    try:
        yield
    finally:
        for call in calls:
            call()


def checkpoint_due(epoch_seconds: float, since_saved: float, every: float) -> bool:
    """Every epoch of a second or more (its checkpoint costs little beside it); shorter ones every `every`
    seconds, so a tiny model does not spend its time writing files."""
    return epoch_seconds >= 1 or since_saved >= every


def _checkpoint(store, epoch, model, optimizer, scaler, shuffle, best, best_epoch, stale, device) -> None:
    """Everything --resume needs to go on as if never stopped (the background writer snapshots it)."""
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict(), "shuffle": shuffle.get_state(), "rng": torch.get_rng_state(),
             "best": best, "best_epoch": best_epoch, "stale": stale}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    store.save_checkpoint(state)


def _monitored(record: dict, split: str, monitor: str) -> float:
    found = record[split]
    if monitor not in found:  # the config check refuses this before training; a guard, should a metric go missing
        raise DeepstationError(f"trainer.monitor: `{monitor}` is not among the {split} metrics this task reports "
                               f"({', '.join(found)}); monitor one of those")
    return found[monitor]


class Interrupts:
    """SIGINT and SIGTERM during training, in the main thread. When the last finished epoch is checkpointed
    (`saved`), they interrupt at once, as Ctrl-C always does; when it is not (short epochs are checkpointed every
    trainer.checkpoint_every seconds), the running epoch finishes, is checkpointed, and then training stops, so
    `--resume` loses nothing. A second signal interrupts at once."""

    def __init__(self):
        self.asked, self.saved, self._before = None, True, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._before[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        return False

    def _handle(self, signum, frame):
        if self.saved or self.asked:
            raise KeyboardInterrupt
        self.asked = signum


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
