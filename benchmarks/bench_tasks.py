"""The seed tasks against their targets: each deep model beside its hand-picked baseline (and the classical
reference where there is one), on the task's own test split, through `deepstation compare`.

    .venv/bin/python benchmarks/bench_tasks.py [TASK.yaml ...]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from _common import Contention, ROOT, command, machine, python_cmd, today, write_section

TASKS = {  # task -> (headline metric, target as text, check)
    "examples/digit-captions.yaml": ("exact_match", ">= 0.95 and above the baseline", lambda d, b: d >= 0.95 and d > b),
    "examples/airline.yaml": ("mape", "<= 4.15 % (sktime's AutoARIMA)", lambda d, b: d <= 4.15),
    "examples/gunpoint.yaml": ("accuracy", ">= 0.99", lambda d, b: d >= 0.99),
    "examples/cpi.yaml": ("mape", "(no target: reported)", None),
    "examples/speech-digits.yaml": ("wer", "<= 0.05 on held-out voices, below both baselines",
                                    lambda d, b: d <= 0.05 and d < b),
}


def main(argv=None) -> int:
    tasks = (argv if argv is not None else sys.argv[1:]) or list(TASKS)
    contention, rows, began = Contention(), [], time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        for task in tasks:
            out = subprocess.run([sys.executable, "-m", "deepstation", "compare", task, "--json", "--quiet",
                                  "--no-track", "--runs-dir", runs], cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                rows.append(f"| `{task}` | failed: {out.stderr.strip().splitlines()[-1][:120]} | | | | | |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            metric, target, check = TASKS.get(task, ("loss", "-", None))
            deep = r["deep"]["metrics"][r["split"]].get(metric)
            base = (r["baseline"] or {}).get("metrics", {}).get(r["split"], {}).get(metric)
            ref = r.get("reference", {}).get("metrics", {}).get("test", {}).get(metric) if r.get("reference") else None
            verdict = "-" if check is None or deep is None else ("met" if check(deep, base) else "**missed**")
            rows.append(f"| `{task}` | {metric} | {_f(deep)} | {_f(base)} | {_f(ref)} | {target}: {verdict} | "
                        f"{r['deep']['fit_seconds']:.0f} s / {r['baseline']['fit_seconds'] if r['baseline'] else 0:.1f} s |")
    body = f"""## Seed tasks: learned features against hand-picked ones

Command: `{command(python_cmd() + ' benchmarks/bench_tasks.py')}` · {today()} · {time.perf_counter() - began:.0f} s
Machine: {machine()}

Each row is one `deepstation compare TASK --json`: the deep model (best epoch by validation) and the hand-picked
baseline on the task's test split; *classical* is the best forecasting reference by MASE (of naive, seasonal
naive, Naive2, ETS and Theta; benchmarks/bench_forecast.py has them all) or pocketsphinx.

| task | metric | deep | hand-picked | classical | target | training: deep / baseline |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{contention.report()}
"""
    write_section("bench_tasks", body)
    print(body)
    return 0


def _f(value) -> str:
    return "-" if value is None else f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
