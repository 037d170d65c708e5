"""Series classification as people download it: the UCR/UEA archive's own .ts files (train and test, as sktime
ships them) given to `deepstation compare` as {train: FILE, test: FILE}: the deep model beside the hand-picked
baseline, MiniRocket and 1-NN DTW, in one run, with the published accuracies beside them.

    .venv/bin/python benchmarks/bench_ucr.py [--sets GunPoint,PLAID] [--epochs N]

Target (issue 13): deep >= MiniRocket - 0.01 on each set and above it on average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

from _common import Contention, ROOT, command, machine, python_cmd, today, write_section
from ucr_published import PUBLISHED

SETS = ["GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "PLAID", "ACSF1"]
# one model for every set, not tuned per set; only the first layer's stride follows the data: long series are read
# at every `stride`-th step, so that the longest training series gives at most STEPS steps
DEEP = {"kind": "cnn1d", "width": 32, "depth": 3, "dropout": 0.1, "kernel": 9, "dilation": 2, "pool": "meanmax"}
STEPS = 400
TRAINER = {"epochs": 200, "batch_size": 16, "optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-3,
           "schedule": "onecycle", "monitor": "loss", "seed": 0}


def archive() -> str:
    import sktime.datasets

    return os.path.join(os.path.dirname(sktime.datasets.__file__), "data")


def task_for(name: str, epochs: int | None) -> dict:
    """The set's task: its own train and test files; every training series trains (split.valid 0), the best
    epoch picked by the training loss, as the published deep models (FCN, ResNet, InceptionTime) are run."""
    from pathlib import Path

    from deepstation.data.archives import read_ts

    folder = os.path.join(archive(), name)
    train = os.path.join(folder, f"{name}_TRAIN.ts")
    longest = max(len(s) for s in read_ts(Path(train))["series"])
    return {"name": f"ucr-{name.lower()}",
            "data": {"source": {"train": train, "test": os.path.join(folder, f"{name}_TEST.ts")},
                     "split": {"valid": 0}},
            "inputs": [{"name": "series", "type": "series", "columns": ["series"], "normalize": "both"}],
            "outputs": [{"name": "label", "type": "category", "column": "label"}],
            "model": {"encoders": {"series": {**DEEP, "stride": -(-longest // STEPS)}}},
            "trainer": {**TRAINER, **({"epochs": epochs} if epochs else {})}}


def run_set(name: str, epochs: int | None, runs: str) -> dict:
    path = os.path.join(runs, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(task_for(name, epochs), f)
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "deepstation", "compare", path, "--json", "--quiet", "--no-track",
                          "--runs-dir", runs], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"name": name, "error": (out.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    split = r["split"]
    found = {"name": name, "seconds": time.perf_counter() - began, "deep": r["deep"]["metrics"][split]["accuracy"],
             "deep_seconds": r["deep"]["fit_seconds"]}
    base = r.get("baseline") or {}
    found["hand-picked"] = base.get("metrics", {}).get(split, {}).get("accuracy")
    for ref in r.get("references") or []:
        found[ref["name"]] = ref["metrics"]["test"]["accuracy"]
        found[f"{ref['name']}_seconds"] = ref.get("seconds")
    return found


def verdict(row: dict) -> str:
    rocket = row.get("minirocket")
    if rocket is None or "error" in row:
        return "-"
    gap = row["deep"] - rocket
    return "met" if gap >= -0.01 else f"**missed** by {-gap - 0.01:.3f}"


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated sets (default: all six)")
    ap.add_argument("--epochs", type=int, default=None, help="override the deep model's epochs (a quick look)")
    ap.add_argument("--no-write", action="store_true", help="print, do not rewrite RESULTS.md")
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    contention, rows, began = Contention(), [], time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        for name in sets:
            row = run_set(name, args.epochs, runs)
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = []
    for row in rows:
        p = PUBLISHED.get(row["name"], {})
        if "error" in row:
            lines.append(f"| {row['name']} | failed: {row['error']} | | | | | | | |")
            continue
        lines.append(f"| {row['name']} | {_f(row['deep'])} | {_f(row.get('minirocket'))} | {_f(row.get('dtw'))} | "
                     f"{_f(row.get('hand-picked'))} | {_f(p.get('rocket'))} | {_f(p.get('inceptiontime'))} | "
                     f"{verdict(row)} | {row['deep_seconds']:.0f} s / {row.get('minirocket_seconds') or 0:.0f} s |")
    scored = [r for r in rows if "error" not in r and r.get("minirocket") is not None]
    mean_deep = sum(r["deep"] for r in scored) / max(len(scored), 1)
    mean_rocket = sum(r["minirocket"] for r in scored) / max(len(scored), 1)
    average = (f"Average over {len(scored)} sets: deep {mean_deep:.3f}, MiniRocket {mean_rocket:.3f}: "
               + ("above it: met" if mean_deep > mean_rocket else f"**missed** by {mean_rocket - mean_deep:.3f}"))
    epochs = f" --epochs {args.epochs}" if args.epochs else ""
    body = f"""## Series classification on the archives' own files (UCR/UEA)

Command: `{command(python_cmd() + ' benchmarks/bench_ucr.py' + epochs)}` · {today()} · {time.perf_counter() - began:.0f} s
Machine: {machine()}

Each row is one `deepstation compare` of a task whose `data.source` is the set's `{{train: X_TRAIN.ts, test:
X_TEST.ts}}` as sktime ships them; each series is read both standardised by the training set and z-normalised on
its own (`normalize: both`), shorter ones padded to the longest. Deep is one model for every set, not tuned per
set: {DEEP['kind']} (width
{DEEP['width']}, depth {DEEP['depth']}, kernel {DEEP['kernel']}, dilation {DEEP['dilation']}, {DEEP['pool']} pooling;
the first layer's stride brings the longest series to at most {STEPS} steps), {TRAINER['epochs'] if not args.epochs
else args.epochs} epochs on every training series, the best epoch by training loss (as FCN, ResNet and InceptionTime
were run). MiniRocket (ridge classifier) and 1-NN DTW fit on the same training series. Test accuracy on the
archive's test split; *published* columns are the papers' figures on the same split (benchmarks/ucr_published.py
names the sources).

| set | deep | MiniRocket | 1-NN DTW | hand-picked | ROCKET (published) | InceptionTime (published) | deep >= MiniRocket - 0.01 | training: deep / MiniRocket |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

{average}

{contention.report()}
"""
    if not args.no_write:
        write_section("bench_ucr", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
