"""Data-parallel scaling: deepstation's Ray Train path with 1 and 2 CPU workers against the single-process path,
on the same task, on this machine.

    .venv/bin/python benchmarks/bench_scale.py            (a few minutes: each Ray run starts its own local cluster)

Four real `deepstation.train` runs of the same task (tracking off, run folders in a temp dir):

  process, 1 thread      the plain path, torch.set_num_threads(1)
  process, 2 threads     the plain path, torch.set_num_threads(2): all of a 2-core machine
  Ray, 1 worker          the Ray path forced for one worker (DDP of one process): 2 CPUs, 2 threads
  Ray, 2 workers         scale.batch: global (the same optimisation as one process): 1 CPU and 1 thread each

Throughput is training samples per second of an epoch's training phase, read from metrics.jsonl (`seconds`: the
shuffle and the optimiser steps; on Ray, rank 0's, which waits for every all-reduce). Ray's start-up, validation and
checkpoints are outside it. The figure is the median over the epochs after the first `--warmup`.

  scaling efficiency     throughput(2 workers) / (2 x throughput(1 process, 1 thread)): each worker against one
                         process doing the same work with the same one core
  speedup here           throughput(2 workers x 1 thread) / throughput(1 process x 2 threads): the same 2 cores
                         used by processes instead of threads, which is what --workers 2 buys on this machine
  Ray path overhead      (epoch time of Ray with 1 worker - epoch time of 1 process, 2 threads) / steps per epoch:
                         what DDP, the all-reduce of the losses and the Ray worker cost per step
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TASK = "examples/digits.yaml"


def one_run(task: str, epochs: int, runs: Path, threads: int | None, workers: int | None, force_ray: bool = False):
    import torch

    import deepstation
    from deepstation import scale
    from deepstation.config import load_task

    raw = load_task(_common.ROOT / task).model_dump()
    raw["tracking"] = {"enabled": False}
    raw["trainer"].update(epochs=epochs, device="cpu", patience=None, max_minutes=None)
    if threads:
        torch.set_num_threads(threads)
    forced = mock.patch.object(scale.Layout, "distributed", property(lambda self: True)) if force_ray else None
    began = time.perf_counter()
    if forced:
        forced.start()
    try:
        run = deepstation.train(raw, runs_dir=runs, workers=workers)
    finally:
        if forced:
            forced.stop()
    wall = time.perf_counter() - began
    lines = [json.loads(ln) for ln in (run.dir / "metrics.jsonl").read_text().splitlines()]
    return {"wall": wall, "lines": lines, "summary": run.summary, "rows": run.summary["data"]["rows"]["train"]}


def throughput(result, warmup: int) -> float:
    timed = result["lines"][warmup:]
    return statistics.median(result["rows"] / ln["seconds"] for ln in timed)


def epoch_seconds(result, warmup: int) -> float:
    return statistics.median(ln["seconds"] for ln in result["lines"][warmup:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default=TASK, help=f"the task YAML (default {TASK})")
    ap.add_argument("--epochs", type=int, default=12, help="epochs per run (default 12)")
    ap.add_argument("--warmup", type=int, default=2, help="first epochs left out of the figures (default 2)")
    ap.add_argument("--quick", action="store_true", help="3 epochs, nothing written: a smoke test")
    _common.add_options(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.warmup = 3, 1

    waited = _common.wait_for_quiet(args.wait_quiet)
    if waited:
        print(waited, flush=True)
    contention = _common.Contention()
    began = time.perf_counter()
    plans = [("process, 1 thread", 1, None, False), ("process, 2 threads", 2, None, False),
             ("Ray, 1 worker x 2 threads", None, 1, True), ("Ray, 2 workers x 1 thread", None, 2, False)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="deepstation-bench-") as tmp:
        for name, threads, workers, force in plans:
            r = one_run(args.task, args.epochs, Path(tmp), threads, workers, force)
            results[name] = r
            print(f"{name}: {throughput(r, args.warmup):,.0f} samples/s, {1000 * epoch_seconds(r, args.warmup):.1f} "
                  f"ms/epoch, wall {r['wall']:.1f} s", flush=True)
    seconds = time.perf_counter() - began

    one_1t, one_2t = results["process, 1 thread"], results["process, 2 threads"]
    ray_1, ray_2 = results["Ray, 1 worker x 2 threads"], results["Ray, 2 workers x 1 thread"]
    t = {name: throughput(r, args.warmup) for name, r in results.items()}
    efficiency = t["Ray, 2 workers x 1 thread"] / (2 * t["process, 1 thread"])
    speedup = t["Ray, 2 workers x 1 thread"] / t["process, 2 threads"]
    steps = ray_1["summary"]["scale"]["global_batch"]
    steps = -(-ray_1["rows"] // steps)
    overhead_ms = 1000 * (epoch_seconds(ray_1, args.warmup) - epoch_seconds(one_2t, args.warmup)) / steps
    gap = max(abs(a["train"]["loss"] - b["train"]["loss"]) for a, b in zip(ray_2["lines"], one_2t["lines"]))
    params = ray_2["summary"]["parameters"]
    startup = {name: r["wall"] - sum(ln["seconds"] for ln in r["lines"]) for name, r in results.items()}

    rows = ["| run | workers x torch threads | samples/s (median) | ms per epoch | test accuracy | wall s (of which "
            "outside the epochs' training phase) |", "|---|---|---|---|---|---|"]
    shapes = {"process, 1 thread": "1 x 1", "process, 2 threads": "1 x 2", "Ray, 1 worker x 2 threads": "1 x 2",
              "Ray, 2 workers x 1 thread": "2 x 1"}
    for name, r in results.items():
        acc = r["summary"]["metrics"]["test"].get("accuracy")
        rows.append(f"| {name} | {shapes[name]} | {t[name]:,.0f} | {1000 * epoch_seconds(r, args.warmup):.1f} | "
                    f"{acc:.4f} | {r['wall']:.1f} ({startup[name]:.1f}) |")
    figures = (f"- Scaling efficiency, 2 workers against 1 process with the same one thread each: **{efficiency:.2f}**\n"
               f"- Speedup of 2 workers x 1 thread over 1 process x 2 threads (the same 2 cores): **{speedup:.2f}x**\n"
               f"- Ray path overhead with 1 worker, against the plain path with the same 2 threads: "
               f"**{overhead_ms:+.2f} ms per step** ({steps} steps of {ray_1['summary']['scale']['global_batch']} rows "
               f"per epoch)\n"
               f"- Gradients all-reduced per step by the 2 workers: {params:,} parameters, "
               f"{4 * params / 1e6:.2f} MB through gloo\n"
               f"- Largest per-epoch training-loss difference, 2 workers (`scale.batch: global`) against 1 process: "
               f"{gap:.2e}")
    out = "\n".join(rows) + "\n\n" + figures
    print()
    print(out)
    load = contention.report()
    print(load)
    print(f"({seconds:.0f} s)")

    if not args.quick and not args.no_write:
        cmd = _common.command(f"{_common.python_cmd()} benchmarks/bench_scale.py"
                              + (f" --task {args.task}" if args.task != TASK else "")
                              + (f" --epochs {args.epochs}" if args.epochs != 12 else ""))
        body = f"""## Data-parallel scaling: Ray Train workers against one process

Command: `{cmd}` · {_common.today()} · {seconds:.0f} s
Machine: {_common.machine()} · device cpu, fp32 · task `{args.task}`, {args.epochs} epochs per run

Four runs of the same task through `deepstation.train`. Throughput: training rows per second of an epoch's training
phase (`seconds` in metrics.jsonl; on Ray, rank 0's, which waits for every all-reduce), median over epochs
{args.warmup + 1}-{args.epochs}: Ray's start-up, validation and checkpoints are outside it (the last column shows
them: wall time minus the epochs' training phases, so for the Ray runs mostly starting a local cluster and the
workers on 2 busy cores). The 2-worker run splits `trainer.batch_size` across the workers (`scale.batch: global`),
so it does the same optimisation as one process; its losses still differ a little from one process's because this
CNN has BatchNorm, which on CPUs normalises over each worker's half of the batch (torch has no CPU SyncBatchNorm;
on GPUs deepstation uses it), and dropout masks drawn per worker (tests/test_scale.py checks the exact match on an
MLP without either). This machine has 2 cores: 2 workers of 1 thread against 1 process of 2 threads is the
comparison that uses the same hardware.

{out}

{load} (The Ray clusters' own processes, started and stopped by the runs, count among the other processes here.)
"""
        _common.write_section("bench_scale", body)
        print(f"wrote {_common.rel(_common.RESULTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
