"""How long the doctor takes: `deepstation doctor --quick --json` (target: under 5 s) and the full
`deepstation doctor --json` (target: under 60 s), each timed end to end through subprocess as a user runs it.

    .venv/bin/python benchmarks/bench_doctor.py            (--quick-runs 3, --full-runs 1)

The quick doctor is timed --quick-runs times after one untimed warm-up run (page cache, .pyc files); the full one
--full-runs times. The table also gives each check's own seconds and status from the last run's JSON, so a slow
check is named.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from bench_cli import executable  # noqa: E402

TARGETS = {"quick": 5.0, "full": 60.0}


def time_doctor(exe: str, args: list[str], runs: int) -> tuple[list[float], dict, int]:
    times, report, code = [], {}, 0
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([exe, "doctor", *args, "--json"], capture_output=True, text=True, cwd=_common.ROOT,
                              timeout=300)
        times.append(time.perf_counter() - began)
        code = done.returncode
        try:
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            sys.exit(f"bench_doctor: `deepstation doctor {' '.join(args)} --json` printed no JSON "
                     f"(exit {done.returncode}):\n{done.stderr[-2000:]}")
    return times, report, code


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick-runs", type=int, default=3, help="timed runs of doctor --quick (default 3)")
    ap.add_argument("--full-runs", type=int, default=1, help="timed runs of the full doctor (default 1)")
    _common.add_options(ap)
    args = ap.parse_args(argv)

    exe = executable()
    waited = _common.wait_for_quiet(args.wait_quiet)
    contention = _common.Contention()
    subprocess.run([exe, "doctor", "--quick", "--json"], capture_output=True, cwd=_common.ROOT)  # warm-up
    quick, quick_report, quick_code = time_doctor(exe, ["--quick"], args.quick_runs)
    full, full_report, full_code = time_doctor(exe, [], args.full_runs)
    noise = contention.report()

    results = {"quick": quick, "full": full}
    met = {k: _common.median(v) <= TARGETS[k] for k, v in results.items()}
    rows = ["| command | runs | median | min | max | target | exit code |", "|---|---|---|---|---|---|---|"]
    for key, args_shown, code in (("quick", " --quick", quick_code), ("full", "", full_code)):
        t = results[key]
        rows.append(f"| `deepstation doctor{args_shown} --json` | {len(t)} | **{_common.median(t):.1f} s**"
                    f"{'' if met[key] else ' ✗'} | {min(t):.1f} s | {max(t):.1f} s | < {TARGETS[key]:g} s | {code} |")
    checks = ["| check | quick: status, s | full: status, s |", "|---|---|---|"]
    quick_rows = {r["name"]: r for r in quick_report.get("checks", [])}
    for row in full_report.get("checks", []):
        q = quick_rows.get(row["name"])
        checks.append(f"| {row['name']} | {q['status'] + ', ' + format(q['seconds'], '.1f') if q else '-'} | "
                      f"{row['status']}, {row['seconds']:.1f} |")
    out = "\n".join(rows) + "\n\nEach check's own time in the last run of each:\n\n" + "\n".join(checks)
    print(out)
    print(noise)
    verdict = all(met.values())
    print(f"targets: {'met' if verdict else 'NOT met'}")

    if not args.no_write:
        cmd = _common.command(f"{_common.python_cmd()} benchmarks/bench_doctor.py"
                              + (f" --quick-runs {args.quick_runs}" if args.quick_runs != 3 else "")
                              + (f" --full-runs {args.full_runs}" if args.full_runs != 1 else ""))
        body = f"""## Doctor

Command: `{cmd}` · {_common.today()}
Machine: {_common.machine()}

`{_common.rel(exe)} doctor [--quick] --json` timed through subprocess from the repository root, as a user runs it
(interpreter start included); the quick doctor after one untimed warm-up run. --quick skips the Jupyter kernels and
Ray and shrinks the GPU benchmark.

{out}

{" ".join(x for x in (waited, noise) if x)}
"""
        _common.write_section("bench_doctor", body)
        print(f"wrote {_common.rel(_common.RESULTS)}")
    return 1 if args.check and not verdict else 0


if __name__ == "__main__":
    sys.exit(main())
