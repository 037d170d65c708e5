"""Forecasting against the statistical references, M4-style: for M4 Weekly (359 series), airline, CPI and copper,
the deep ensemble, the same task with one member, the hand-picked baseline and each classical reference (naive,
seasonal naive, Naive2, ETS, Theta), scored by sMAPE, MASE, OWA and MAPE on the task's own test horizon, with
training seconds; M4 Weekly beside the figures M4 published for the same split.

    .venv/bin/python benchmarks/bench_forecast.py [--tasks examples/m4-weekly.yaml ...] [--no-write]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import Contention, ROOT, add_options, command, machine, python_cmd, today, wait_for_quiet, write_section

TASKS = ["examples/m4-weekly.yaml", "examples/airline.yaml", "examples/cpi.yaml", "examples/copper.yaml"]
METRICS = ("smape", "mase", "owa", "mape", "coverage", "msis")

# M4 Weekly as the competition published it (Evaluation and Ranks.xlsx; ../shared/data/m4-weekly/README.md)
M4_WEEKLY = [("Naive2 (M4)", 9.161, 2.777, 1.000), ("SES (M4)", 9.012, 2.685, 0.975), ("Theta (M4)", 9.093, 2.637, 0.971),
             ("Damped (M4)", 8.866, 2.404, 0.917), ("the M4 team's MLP", 21.349, 13.568, 3.608),
             ("the M4 team's RNN", 15.220, 5.132, 1.755), ("Smyl's ES-RNN (M4 winner)", 7.817, 2.356, 0.851),
             ("best weekly sMAPE in M4", 6.582, 2.107, 0.74)]


def targets(task: str, rows: dict) -> list[str]:
    """The issue's targets, each met or missed by how much."""
    deep = rows["deep ensemble"]
    refs = {k: v for k, v in rows.items() if k in ("naive", "seasonal_naive", "ets", "theta")}
    found = []
    if task.endswith("m4-weekly.yaml"):
        found.append(_verdict("OWA <= 0.85 (Smyl's ES-RNN 0.851)", deep.get("owa"), 0.85))
        found.append(_verdict("sMAPE <= 7.8", deep.get("smape"), 7.8))
        found.append(_verdict("training under 15 minutes (s)", deep.get("seconds"), 900))
    elif task.endswith("airline.yaml"):
        found.append(_verdict("MAPE <= 4.15 (sktime's AutoARIMA)", deep.get("mape"), 4.15))
        found.append(_verdict("MAPE below ETS", deep.get("mape"), rows["ets"].get("mape"), strict=True))
    else:
        best = min(refs, key=lambda k: refs[k].get("mase", float("inf")))
        found.append(_verdict(f"MASE at or below the best reference ({best})", deep.get("mase"), refs[best]["mase"]))
    return found


def _verdict(what: str, value, limit, strict=False) -> str:
    if value is None or limit is None:
        return f"{what}: not measured"
    met = value < limit if strict else value <= limit
    return f"{what}: {_f(value)}, " + ("met" if met else f"**missed** by {_f(value - limit)}")


def run_compare(task_path: Path, runs: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "deepstation", "compare", str(task_path), "--json", "--quiet",
                          "--no-track", "--runs-dir", runs], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{task_path}: {out.stderr.strip().splitlines()[-1][:200]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def single(task_path: str, folder: str) -> Path:
    """The task with its ensemble replaced by one member (the first member's loss and lookback)."""
    task = yaml.safe_load((ROOT / task_path).read_text())
    ens = (task.get("model") or {}).pop("ensemble", None)
    if ens and ens.get("losses"):
        task["outputs"][0]["loss"] = ens["losses"][0]
    task["name"] = task["name"] + "-single"
    source = task["data"]["source"]
    if not str(source).startswith("builtin:"):
        task["data"]["source"] = str((ROOT / task_path).parent / source)
    path = Path(folder) / Path(task_path).name
    path.write_text(yaml.safe_dump(task, sort_keys=False))
    return path


def measure(task_path: str, runs: str) -> dict:
    """method -> metrics (and training seconds) on the test horizon."""
    ensemble = run_compare(ROOT / task_path, runs)
    rows = {"deep ensemble": {**ensemble["deep"]["metrics"]["test"], "seconds": ensemble["deep"]["fit_seconds"]}}
    with tempfile.TemporaryDirectory() as folder:
        one = run_compare(single(task_path, folder), runs)
    rows["deep single"] = {**one["deep"]["metrics"]["test"], "seconds": one["deep"]["fit_seconds"]}
    base = ensemble["baseline"]
    rows["hand-picked (lags -> ridge)"] = {**base["metrics"]["test"], "seconds": base["fit_seconds"]}
    for r in ensemble["references"]:
        rows[r["name"]] = {**r["metrics"]["test"], "seconds": r["seconds"]}
    return rows


def table(task: str, rows: dict) -> str:
    best = {m: min((v[m] for v in rows.values() if v.get(m) is not None), default=None)
            for m in METRICS if m not in ("coverage",)}
    lines = [f"### `{task}`", "", "| method | " + " | ".join(METRICS) + " | training s |",
             "|---|" + "---|" * (len(METRICS) + 1)]
    for name, v in rows.items():
        cells = [(f"**{_f(v.get(m))}**" if v.get(m) is not None and best.get(m) == v.get(m) else _f(v.get(m)))
                 for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_f(v.get('seconds'))} |")
    if task.endswith("m4-weekly.yaml"):
        for name, smape, mase, owa in M4_WEEKLY:
            lines.append(f"| {name}, published | {smape:.3f} | {mase:.3f} | {owa:.3f} | - | - | - | - |")
    lines += ["", "Targets: " + "; ".join(targets(task, rows)) + "."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=TASKS, metavar="TASK")
    add_options(ap)
    args = ap.parse_args(argv)
    quiet = wait_for_quiet(args.wait_quiet) if args.wait_quiet else ""
    contention, began, sections, missed = Contention(), time.perf_counter(), [], False
    with tempfile.TemporaryDirectory() as runs:
        for task in args.tasks:
            try:
                rows = measure(task, runs)
            except RuntimeError as err:
                sections.append(f"### `{task}`\n\nfailed: {err}")
                missed = True
                continue
            sections.append(table(task, rows))
            missed |= "**missed**" in sections[-1]
            print(sections[-1], flush=True)
    body = f"""## Forecasting against the statistical references

Command: `{command(python_cmd() + ' benchmarks/bench_forecast.py')}` · {today()} · {time.perf_counter() - began:.0f} s
Machine: {machine()}

Each task is `deepstation compare TASK --json` twice: as written (the deep ensemble) and with one member (the
first member's loss and lookback). Every method is scored on the task's test horizon (the last `horizon` points
of each series), per series, then averaged: sMAPE and MAPE in %, MASE over each series' in-sample seasonal naive
error, OWA against Naive2 as M4 defines it, coverage and MSIS of the deep model's outer quantiles. Bold: the best
of each column, whichever method it is. The references are fitted per series on everything before the test.

{chr(10).join(sections)}

{quiet + chr(10) if quiet else ""}{contention.report()}
"""
    if not args.no_write:
        write_section("bench_forecast", body)
    print(body)
    return 1 if missed and args.check else 0


def _f(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


if __name__ == "__main__":
    sys.exit(main())
