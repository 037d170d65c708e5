"""On a real CUDA GPU (skipped elsewhere): fp16 loss scaling with clipping, exact resume after a signal, and the
loop's collectives over NCCL. benchmarks/gpu_check.sh runs these with `pytest -m gpu` on the GPU machine."""
from __future__ import annotations

import json
import os
import signal
import socket

import numpy as np
import pandas as pd
import pytest
import torch

import deepstation
from conftest import table_task

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_fp16_scales_the_loss_clips_and_learns(table_csv, monkeypatch):
    norms, clip = [], torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm, *args, **kwargs):  # the gradient norms clipping sees, step by step
        total = clip(parameters, max_norm, *args, **kwargs)
        norms.append(float(total))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    run = deepstation.train(table_task(table_csv, device="cuda", precision="fp16", grad_clip=1.0, epochs=40,
                                       learning_rate=0.01), track=False)
    assert run.summary["precision"] == "fp16" and run.summary["device"].startswith("cuda")
    prices = pd.read_csv(table_csv)["price"]
    assert run.metrics["test"]["mae"] < 0.25 * float(np.mean(np.abs(prices - prices.mean())))
    # clipping ran on every step, on unscaled gradients: scaled ones would be the loss scale (65536 at first) larger
    finite = [n for n in norms if np.isfinite(n)]  # a step that overflowed has inf gradients, and is skipped
    assert len(norms) >= 40 and len(finite) > len(norms) / 2 and float(np.median(finite)) < 1e3, norms[:20]
    scaler = torch.load(run.dir / "checkpoint.pt", weights_only=True)["scaler"]
    assert {"scale", "growth_factor", "_growth_tracker"} <= set(scaler)  # its state travels with the checkpoint


def _history(run_dir):
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in ln.items() if k not in ("seconds", "samples_per_s")} for ln in lines]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_signal_mid_run_resumes_on_the_gpu_as_if_never_stopped(table_csv, monkeypatch, precision):
    from deepstation.models.assemble import TaskModel

    raw = table_task(table_csv, device="cuda", precision=precision, epochs=6, checkpoint_every=3600,
                     schedule="onecycle")
    raw["model"]["encoders"]["features"]["dropout"] = 0.3  # the CUDA random state must come back too
    whole = deepstation.train(raw, track=False)
    real, calls = TaskModel.loss, {"n": 0}

    def loss(self, out, targets):
        if self.training:
            calls["n"] += 1
            if calls["n"] == 5 * 2 + 2:  # epoch 3, step 2
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, out, targets)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(TaskModel, "loss", loss)
        deepstation.train(raw, track=False)
    run_dir = next(p for p in whole.dir.parent.iterdir() if p != whole.dir)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 3
    resumed = deepstation.train(None, resume=run_dir, track=False)
    assert _history(run_dir) == _history(whole.dir)
    assert resumed.metrics == whole.metrics


def test_the_loop_over_nccl_trains_as_one_process(table_csv):
    """A one-rank NCCL group: the loop's all-reduce, broadcast and vote go through NCCL and change nothing."""
    import torch.distributed as dist

    from deepstation.config import load_task
    from deepstation.data.prepare import prepare
    from deepstation.data.sources import read_source
    from deepstation.models.assemble import build_model
    from deepstation.run import MemoryStore, seed
    from deepstation.scale.sync import ALONE, Group
    from deepstation.training import device as devices
    from deepstation.training.loop import fit
    from deepstation.training.progress import Silent

    task = load_task(table_task(table_csv, device="cuda", epochs=3, max_minutes=10))
    data = prepare(task, read_source(task.data.source))
    plan = devices.plan("cuda", "auto")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1,
                            device_id=plan.device)
    try:
        runs = []
        for group in (ALONE, Group(plan.device)):
            seed(0)
            model = build_model(task, data.codecs, data.targets)
            store = MemoryStore()
            fit(model, data.parts["train"], data.parts["valid"], data.targets, task.trainer, plan, store, Silent(),
                dist=group)
            runs.append([(r["train"]["loss"], r["valid"]["loss"]) for r in store.records])
    finally:
        dist.destroy_process_group()
    assert runs[0] == runs[1]
