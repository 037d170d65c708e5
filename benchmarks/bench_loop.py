"""Per-epoch wall time of deepstation's training loop against a plain hand-written PyTorch loop doing the same work.

    .venv/bin/python benchmarks/bench_loop.py            (or: make bench)

Both sides get the same model (deepstation's build_model from the same task, seeded alike, so the same initial
weights), the same prepared tensors (deepstation.data.prepare on builtin:digits), the same batch size, optimizer,
learning-rate schedule (the same per-step formula), shuffle generator and torch thread count. Since the random
streams match too, both train the very same trajectory: the script checks that their epoch losses agree.

  plain        per epoch: randperm shuffle, slice batches out of the in-memory tensors, forward, model.loss,
               zero_grad, backward, step; then a validation pass (forward over the valid part under no_grad,
               computing its loss). Nothing is written anywhere.
  deepstation  deepstation.training.loop.fit with a real RunFolder in a temporary folder (metrics.jsonl every epoch,
               checkpoint.pt and best.pt when a real run writes them) and a progress object that notes
               time.perf_counter() when fit starts and at every epoch(): an epoch's time is everything fit does
               between two such calls. Unless --no-breakdown, evaluate and the RunFolder's store calls are wrapped
               to time them too (a few microseconds an epoch), to show where the epoch goes.

The two alternate (ABBA...) over many short rounds, after a warm-up round that is not counted; the figure is the
ratio of the median per-epoch times, deepstation / plain (target: <= 1.03). The "paired ratio" is the median over
rounds of the ratio of each round's two adjacent blocks: it is steadier when the machine's speed drifts.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGET = 1.03
TASKS = {  # example -> (rounds, epochs per round): under 40 s each on 2 idle CPU cores. Many short rounds: this
    # machine's speed drifts over seconds, and close alternation lets the drift hit both loops alike
    "examples/digits-mlp.yaml": (32, 6),
    "examples/digits.yaml": (16, 3),
}


# --- the plain loop ---------------------------------------------------------------------------------------------

def sub(tree, index):
    """Rows `index` of every tensor in the (nested) feature dict the model takes."""
    return {k: sub(v, index) for k, v in tree.items()} if isinstance(tree, dict) else tree[index]


def moved(tree, device):
    return {k: moved(v, device) for k, v in tree.items()} if isinstance(tree, dict) else tree.to(device)


def plain_round(task, data, plan, epochs: int) -> dict:
    import torch

    from deepstation.models.assemble import build_model
    from deepstation.training.schedule import learning_rate  # a pure formula: the same per-step rates as fit

    cfg, device = task.trainer, plan.device
    torch.manual_seed(cfg.seed)
    model = build_model(task, data.codecs, data.targets).to(device)
    params = model.parameters()
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    autocast = ((lambda: torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[
        plan.precision])) if plan.precision != "fp32" else nullcontext)
    scaler = torch.amp.GradScaler(device.type, enabled=plan.precision == "fp16")
    shuffle = torch.Generator().manual_seed(cfg.seed)
    train, valid = data.parts["train"], data.parts["valid"]
    x, y = moved(train.features, device), moved(train.targets, device)
    xv, yv = moved(valid.features, device), moved(valid.targets, device)
    n, nv, bs, ebs = len(train), len(valid), cfg.batch_size, cfg.eval_batch_size
    steps, total = math.ceil(n / bs), math.ceil(n / bs) * epochs

    times, train_secs, losses, valid_losses = [], [], [], []
    last = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        batch_losses = []
        for step in range(steps):
            if cfg.schedule != "constant":
                lr = learning_rate(cfg.schedule, cfg.learning_rate, epoch * steps + step, total)
                for group in opt.param_groups:
                    group["lr"] = lr
            index = order[step * bs:(step + 1) * bs]
            xb, yb = sub(x, index), sub(y, index)
            with autocast():
                loss = model.loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            if scaler.is_enabled():  # fp16 on a GPU only
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            batch_losses.append(loss.detach())
        losses.append(torch.stack(batch_losses).float().mean().item())
        train_secs.append(time.perf_counter() - last)
        model.eval()
        vloss = 0.0
        with torch.no_grad():
            for start in range(0, nv, ebs):
                part = slice(start, start + ebs)
                with autocast():
                    out = model(sub(xv, part))
                rows = min(ebs, nv - start)
                vloss += float(model.loss(out, sub(yv, part))) * rows
        valid_losses.append(vloss / max(nv, 1))
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return {"times": times, "train_secs": train_secs, "loss": losses, "valid_loss": valid_losses}


# --- deepstation's loop -----------------------------------------------------------------------------------------

class Clock:
    """The progress object fit reports to: notes the time at start() and at every epoch()."""

    def __init__(self, hook=None, begin=None):
        self.marks, self.records, self.hook, self.begin, self.closed = [], [], hook, begin, None

    def start(self, total, done, monitor):
        if self.begin:
            self.begin()
        self.marks = [time.perf_counter()]

    def epoch(self, record):
        self.marks.append(time.perf_counter())
        self.records.append(record)
        if self.hook:
            self.hook(self.marks[-1] - self.marks[-2], record)

    def close(self):  # fit calls it last, after waiting for any background writes
        self.closed = time.perf_counter()


class Parts:
    """Times each part of deepstation's epoch inside the measured rounds: evaluate and each store call, by wrapping
    them (a few microseconds an epoch). Per epoch: those, the training phase (fit's own record["seconds"]) and
    `other`, the rest."""

    def __init__(self):
        from deepstation.run import RunFolder

        self.epochs: list[dict] = []
        self.current: dict[str, float] = {}
        self.ends: list[float] = []  # per run: from the last epoch() to close(), e.g. waiting for writes
        timed = self.timed

        class TimedFolder(RunFolder):
            append_metrics = timed("append_metrics", RunFolder.append_metrics)
            save_checkpoint = timed("save_checkpoint", RunFolder.save_checkpoint)
            save_best = timed("save_best", RunFolder.save_best)

        self.folder_type = TimedFolder

    def timed(self, name, fn):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - began
        return wrapper

    def patch(self):
        """Wrap evaluate where fit looks it up; returns the undo."""
        from deepstation.training import loop

        original = loop.evaluate
        loop.evaluate = self.timed("evaluate", original)
        return lambda: setattr(loop, "evaluate", original)

    def epoch_done(self, seconds: float, record: dict) -> None:
        parts = dict(self.current, epoch=seconds, **{"train phase": record["seconds"]})
        parts["other"] = seconds - sum(v for k, v in parts.items() if k != "epoch")
        self.epochs.append(parts)
        self.current.clear()

    def summary(self) -> dict:
        keys = {k for p in self.epochs for k in p}
        result = {k: 1000 * _common.median([p.get(k, 0.0) for p in self.epochs]) for k in keys}
        best_calls = [p["save_best"] for p in self.epochs if "save_best" in p]
        result["save_best per call"] = 1000 * _common.median(best_calls) if best_calls else 0.0
        result["save_best share"] = len(best_calls) / max(len(self.epochs), 1)
        result["end of fit"] = 1000 * _common.median(self.ends) if self.ends else 0.0
        return result


def deepstation_round(task, data, plan, epochs: int, root: Path, parts: Parts | None = None) -> dict:
    import torch

    from deepstation.models.assemble import build_model
    from deepstation.run import RunFolder
    from deepstation.training.loop import fit

    torch.manual_seed(task.trainer.seed)
    model = build_model(task, data.codecs, data.targets)
    folder = RunFolder.create(root, task.name)
    if parts is not None:
        folder = parts.folder_type(folder.path)
        undo = parts.patch()
    clock = Clock(parts.epoch_done, parts.current.clear) if parts is not None else Clock()
    try:
        fit(model, data.parts["train"], data.parts["valid"], data.targets, task.trainer, plan, folder, clock)
    finally:
        if parts is not None:
            undo()
    times = [b - a for a, b in zip(clock.marks, clock.marks[1:])]
    if parts is not None and clock.closed is not None:
        parts.ends.append(clock.closed - clock.marks[-1])
    return {"times": times, "train_secs": [r["seconds"] for r in clock.records],
            "loss": [r["train"]["loss"] for r in clock.records]}


# --- the benchmark ----------------------------------------------------------------------------------------------

def with_epochs(task, epochs: int):
    return task.model_copy(update={"trainer": task.trainer.model_copy(update={"epochs": epochs})})


def bench_task(path: str, rounds: int, epochs: int, root: Path, quick: bool, breakdown: bool) -> dict:
    from deepstation.config import load_task
    from deepstation.data.prepare import prepare
    from deepstation.data.sources import read_source
    from deepstation.training import device as devices

    base = load_task(_common.ROOT / path)
    plan = devices.plan(base.trainer.device, base.trainer.precision)
    data = prepare(base, read_source(base.data.source, base.data.index))
    task = with_epochs(base, epochs)

    if not quick:  # warm-up: allocator, kernels, first file writes; not counted
        warm = with_epochs(base, max(2, epochs // 3))
        deepstation_round(warm, data, plan, warm.trainer.epochs, root)
        plain_round(warm, data, plan, warm.trainer.epochs)

    parts = Parts() if breakdown else None
    ds, pl = {"times": [], "train_secs": []}, {"times": [], "train_secs": []}
    worst_loss_gap, paired = 0.0, []
    for i in range(rounds):
        order = ("ds", "plain") if i % 2 == 0 else ("plain", "ds")  # ABBA: drift hits both alike
        got = {}
        for side in order:
            got[side] = (deepstation_round(task, data, plan, epochs, root, parts) if side == "ds"
                         else plain_round(task, data, plan, epochs))
        for acc, side in ((ds, "ds"), (pl, "plain")):
            acc["times"] += got[side]["times"]
            acc["train_secs"] += got[side]["train_secs"]
        paired.append(_common.median(got["ds"]["times"]) / _common.median(got["plain"]["times"]))
        gap = max(abs(a - b) for a, b in zip(got["ds"]["loss"], got["plain"]["loss"]))
        worst_loss_gap = max(worst_loss_gap, gap)

    med = _common.median
    ds_epoch, pl_epoch = med(ds["times"]), med(pl["times"])
    ds_train, pl_train = med(ds["train_secs"]), med(pl["train_secs"])
    ds_tail = med([t - s for t, s in zip(ds["times"], ds["train_secs"])])
    pl_tail = med([t - s for t, s in zip(pl["times"], pl["train_secs"])])
    return {"task": path, "model": base.model.encoders[base.inputs[0].name].kind if base.model.encoders else "?",
            "epochs": len(ds["times"]), "rounds": rounds, "per_round": epochs, "device": str(plan.device),
            "precision": plan.precision, "plain_ms": 1000 * pl_epoch, "ds_ms": 1000 * ds_epoch,
            "ratio": ds_epoch / pl_epoch, "train_ratio": ds_train / pl_train, "plain_train_ms": 1000 * pl_train,
            "ds_train_ms": 1000 * ds_train, "plain_tail_ms": 1000 * pl_tail, "ds_tail_ms": 1000 * ds_tail,
            "paired_ratio": _common.median(paired),
            "loss_gap": worst_loss_gap, "parts": parts.summary() if parts else None}


def table(results) -> str:
    lines = ["| task | epochs timed (each side) | plain ms/epoch | deepstation ms/epoch | ratio (median) | "
             "paired ratio | train phase: plain / deepstation ms | end of epoch: plain / deepstation ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        mark = "" if r["ratio"] <= TARGET else " ✗"
        lines.append(f"| `{r['task']}` ({r['model']}) | {r['epochs']} ({r['rounds']} rounds x {r['per_round']}) | "
                     f"{r['plain_ms']:.2f} | {r['ds_ms']:.2f} | **{r['ratio']:.3f}**{mark} | {r['paired_ratio']:.3f} | "
                     f"{r['plain_train_ms']:.2f} / {r['ds_train_ms']:.2f} | "
                     f"{r['plain_tail_ms']:.2f} / {r['ds_tail_ms']:.2f} |")
    return "\n".join(lines)


def breakdown_table(rows) -> str:
    keys = ["epoch", "train phase", "evaluate", "save_checkpoint", "save_best", "append_metrics", "other"]
    lines = ["| task | " + " | ".join(keys) + " | save_best per call (share of epochs) | end of fit, once per run |",
             "|---|" + "---|" * (len(keys) + 2)]
    for path, b in rows:
        lines.append(f"| `{path}` | " + " | ".join(f"{b.get(k, 0.0):.2f}" for k in keys)
                     + f" | {b['save_best per call']:.2f} ({b['save_best share']:.0%}) | {b['end of fit']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per task (default: per task, see TASKS)")
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                    help="do not time each part of deepstation's epoch (evaluate, checkpoint, best weights, "
                         "metrics): a bare RunFolder, nothing wrapped")
    ap.add_argument("--quick", action="store_true", help="2 short rounds, no warm-up, nothing written: a smoke test")
    _common.add_options(ap)
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()  # one process, one setting: both loops run with the same count
    waited = _common.wait_for_quiet(args.wait_quiet)
    if waited:
        print(waited, flush=True)
    contention = _common.Contention()
    began = time.perf_counter()
    results, parts = [], []
    with tempfile.TemporaryDirectory(prefix="deepstation-bench-") as tmp:
        for path, (rounds, epochs) in TASKS.items():
            if args.quick:
                rounds, epochs = 2, 2
            elif args.rounds:
                rounds = args.rounds
            r = bench_task(path, rounds, epochs, Path(tmp), args.quick, args.breakdown)
            results.append(r)
            print(f"{path}: plain {r['plain_ms']:.2f} ms/epoch, deepstation {r['ds_ms']:.2f} ms/epoch, "
                  f"ratio {r['ratio']:.3f}", flush=True)
            if r["parts"]:
                parts.append((path, r["parts"]))
    seconds = time.perf_counter() - began

    worst = max(r["loss_gap"] for r in results)
    same = (f"Both loops trained the same trajectory: their per-epoch training losses differ by at most "
            f"{worst:.2e}." if worst < 1e-4 else
            f"WARNING: the per-epoch training losses of the two loops differ by up to {worst:.3g}; they are not "
            f"doing the same work.")
    out = table(results)
    if parts:
        out += ("\n\nWhere deepstation's epoch goes, in the same rounds (median ms per epoch of each part; evaluate "
                "and each store call timed by wrapping it; `train phase` is fit's own `seconds`; `other` is the "
                "rest: best-weights copy, checkpoint state, record, bookkeeping; *end of fit*: from the last epoch to "
                "`progress.close()`, outside the per-epoch figures):\n\n" + breakdown_table(parts))
    print()
    print(out)
    print()
    print(same)
    load = contention.report()
    print(load)
    verdict = all(r["ratio"] <= TARGET for r in results)
    print(f"target deepstation/plain <= {TARGET}: {'met' if verdict else 'NOT met'} ({seconds:.0f} s)")

    if not args.quick and not args.no_write:
        cmd = _common.command(f"{_common.python_cmd()} benchmarks/bench_loop.py"
                              + (f" --threads {args.threads}" if args.threads else "")
                              + (f" --rounds {args.rounds}" if args.rounds else "")
                              + ("" if args.breakdown else " --no-breakdown"))
        r0 = results[0]
        body = f"""## Training loop overhead: deepstation vs a plain PyTorch loop

Command: `{cmd}` · {_common.today()} · {seconds:.0f} s
Machine: {_common.machine(threads)} · device {r0['device']}, {r0['precision']}

Per-epoch wall time, median over every timed epoch (after a warm-up round that is not counted; the two loops
alternate ABBA round by round). Same model, weights, tensors, batch size, optimizer, schedule and threads;
deepstation's epoch includes everything `fit` does per epoch (evaluation with metrics, best-weights copy,
`metrics.jsonl`; `checkpoint.pt` and `best.pt` as a real run writes them: these epochs are short, so every
`trainer.checkpoint_every` seconds and after the last epoch), the plain loop's a loss-only validation pass and no
writes. Target: ratio <= {TARGET}.
*Paired ratio*: median over rounds of the ratio of each round's two adjacent blocks (steadier when the machine's
speed drifts). *Train phase*: shuffle and optimizer steps only; *end of epoch*: the rest (validation, writes).

{out}

{same} {load}
"""
        _common.write_section("bench_loop", body)
        print(f"wrote {_common.rel(_common.RESULTS)}")
    return 1 if args.check and not verdict else 0


if __name__ == "__main__":
    sys.exit(main())
