"""What the run folder's per-epoch writes cost the training loop, and what other write policies would cost.

    .venv/bin/python benchmarks/bench_store.py

A companion to bench_loop.py (same plain loop, same timing, same tasks): deepstation's `fit` runs with stores that
differ only in how they write, and each is compared with the plain loop, which writes nothing:

  as is            deepstation.run.RunFolder, whatever it does today
  sync writes      best.pt and checkpoint.pt written in the loop's own thread every epoch (checkpoint.save)
  every 30 s       RunFolder, but checkpoint.pt (with the best.pt it depends on) at most every 30 s, and at the end
  no writes        a store that drops everything: the floor for any write policy

The last three are what-ifs built on the store interface, not deepstation code: they show what a policy would
gain before anyone writes it. Rounds rotate the order of the variants so the machine's drift hits all alike.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import bench_loop  # noqa: E402

TASKS = {"examples/digits-mlp.yaml": (20, 5), "examples/digits.yaml": (10, 2)}  # rounds, epochs per round
EVERY_S = 30.0


def variants():
    from deepstation.run import RunFolder
    from deepstation.training import checkpoint

    class Sync(RunFolder):
        def save_checkpoint(self, state):
            checkpoint.save(self.checkpoint, state)

        def save_best(self, weights):
            checkpoint.save(self.best, weights)

    class Every(RunFolder):
        """A checkpoint at most every EVERY_S seconds; the latest best weights go with it; the rest at the end."""
        last = -1e9

        def __init__(self, path):
            super().__init__(path)
            self._best_due, self._state_due = None, None

        def save_best(self, weights):
            self._best_due = weights

        def save_checkpoint(self, state):
            if time.perf_counter() - Every.last >= EVERY_S:
                Every.last = time.perf_counter()
                self._write(state)
            else:
                self._state_due = state  # references the live tensors: written as they are when training ends

        def _write(self, state):
            if self._best_due is not None:
                super().save_best(self._best_due)
                self._best_due = None
            super().save_checkpoint(state)
            self._state_due = None

        def flush(self):
            if self._state_due is not None:
                self._write(self._state_due)
            parent = getattr(super(), "flush", None)
            if parent:
                parent()

    class Nothing:
        def __init__(self, path):
            pass

        def append_metrics(self, record):
            pass

        def save_checkpoint(self, state):
            pass

        def save_best(self, weights):
            pass

        def load_best(self):
            return None

        def flush(self):
            pass

    return {"as is": None, "sync writes": Sync, f"every {EVERY_S:.0f} s": Every, "no writes": Nothing}


class Store:
    """Makes bench_loop.deepstation_round use another store class (its `parts` hook), timing nothing."""

    def __init__(self, folder_type):
        self.folder_type = folder_type
        self.current: dict = {}
        self.ends: list = []

    def patch(self):
        return lambda: None

    def epoch_done(self, seconds, record):
        pass


def bench_task(path: str, rounds: int, epochs: int, root: Path) -> list[dict]:
    from deepstation.config import load_task
    from deepstation.data.prepare import prepare
    from deepstation.data.sources import read_source
    from deepstation.training import device as devices

    base = load_task(_common.ROOT / path)
    plan = devices.plan(base.trainer.device, base.trainer.precision)
    data = prepare(base, read_source(base.data.source, base.data.index))
    task = bench_loop.with_epochs(base, epochs)
    kinds = {"plain loop": "plain", **variants()}
    names = list(kinds)
    bench_loop.deepstation_round(task, data, plan, epochs, root)  # warm-up
    bench_loop.plain_round(task, data, plan, epochs)
    times = {k: [] for k in names}
    train = {k: [] for k in names}
    paired = {k: [] for k in names}  # per round: this variant's median over the plain loop's, same round
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in (order if i % 2 == 0 else order[::-1]):
            kind = kinds[name]
            if kind == "plain":
                r = bench_loop.plain_round(task, data, plan, epochs)
            else:
                r = bench_loop.deepstation_round(task, data, plan, epochs, root, Store(kind) if kind else None)
            times[name] += r["times"]
            train[name] += r["train_secs"]
            paired[name].append(_common.median(r["times"]))
        for name in names[::-1]:  # plain loop last: it is the divisor
            paired[name][-1] /= paired["plain loop"][-1]
    plain = _common.median(times["plain loop"])
    return [{"task": path, "variant": n, "ms": 1000 * _common.median(times[n]),
             "ratio": _common.median(times[n]) / plain, "train_ms": 1000 * _common.median(train[n]),
             "paired": _common.median(paired[n]),
             "epochs": len(times[n])} for n in names]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to this long for other processes to leave the CPUs alone (default: no wait)")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    waited = _common.wait_for_quiet(args.wait_quiet)
    if waited:
        print(waited, flush=True)
    contention = _common.Contention()
    began = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="deepstation-bench-") as tmp:
        for path, (rounds, epochs) in TASKS.items():
            rows += bench_task(path, rounds, epochs, Path(tmp))
            print(f"{path}: done", flush=True)
    seconds = time.perf_counter() - began
    lines = ["| task | store | ms/epoch (median) | vs plain loop | paired ratio | train phase ms | epochs timed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['task']}` | {r['variant']} | {r['ms']:.2f} | **{r['ratio']:.3f}** | {r['paired']:.3f} | "
                     f"{r['train_ms']:.2f} | {r['epochs']} |")
    out = "\n".join(lines)
    noise = contention.report()
    print()
    print(out)
    print(noise)

    if not args.no_write:
        cmd = _common.command(f"{_common.python_cmd()} benchmarks/bench_store.py"
                              + (f" --threads {args.threads}" if args.threads else ""))
        body = f"""## What-if: the run folder's write policy

Command: `{cmd}` · {_common.today()} · {seconds:.0f} s
Machine: {_common.machine(torch.get_num_threads())}

`fit` with stores that differ only in how they write, against bench_loop's plain loop (which writes nothing).
*as is*: today's RunFolder; *sync writes*: best.pt and checkpoint.pt written in the loop's thread every epoch;
*every {EVERY_S:.0f} s*: a checkpoint (and the best.pt it depends on) at most every {EVERY_S:.0f} s, plus the end;
*no writes*: the floor. What-ifs on the store interface, not deepstation code. *Paired ratio*: median over rounds
of the variant's median over the plain loop's in the same round (steadier when the machine's speed drifts).

{out}

{noise}
"""
        _common.write_section("bench_store", body)
        print(f"wrote {_common.rel(_common.RESULTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
