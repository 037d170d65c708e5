"""Start-up cost of the command line: wall time of `deepstation --help`, and that `import deepstation` stays light.

    .venv/bin/python benchmarks/bench_cli.py            (or: make bench)

`deepstation --help` is timed end to end as a user sees it (process start, interpreter, imports, printing) through
subprocess, median of several runs after one untimed warm-up run (target: <= 0.3 s). Then, each in a fresh
interpreter: `import deepstation` must not import torch, and the modules that `--help` imports are listed by size
of import time for the heaviest few (python -X importtime).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGET_S = 0.3
HEAVY = ["torch", "numpy", "pandas", "sklearn", "pydantic", "rich", "yaml", "PIL"]


def executable() -> str:
    """The console script next to this interpreter (.venv/bin/deepstation), else the one on PATH."""
    beside = Path(sys.executable).parent / "deepstation"
    if beside.exists():
        return str(beside)
    found = shutil.which("deepstation")
    if not found:
        sys.exit("bench_cli: no `deepstation` console script next to this Python or on PATH; run `make setup`")
    return found


def time_help(exe: str, runs: int) -> list[float]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE=os.environ.get("PYTHONDONTWRITEBYTECODE", ""))
    subprocess.run([exe, "--help"], capture_output=True, check=True, env=env)  # warm-up: page cache, .pyc files
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([exe, "--help"], capture_output=True, env=env)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            sys.exit(f"bench_cli: `{exe} --help` failed (exit {done.returncode}):\n{done.stderr.decode()}")
    return times


def heavy_modules(code: str) -> list[str]:
    """The heavy third-party packages that `code` imports, in a fresh interpreter."""
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=_common.ROOT)
    if out.returncode != 0:
        sys.exit(f"bench_cli: the import probe failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _importtime(code: str) -> dict[str, float]:
    """Top-level imports (not nested in another import) of `code` -> cumulative seconds, via -X importtime."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         cwd=_common.ROOT)
    found: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3:
            continue
        try:
            cumulative = float(parts[1])
        except ValueError:  # the header line
            continue
        name = parts[2][1:]  # one space, then two more per level of nesting
        if not name.startswith(" "):
            found[name.strip()] = found.get(name.strip(), 0.0) + cumulative / 1e6
    return found


def slowest_imports(code: str, top: int = 5) -> list[tuple[str, float]]:
    """The slowest top-level imports of `code`, leaving out what the interpreter imports to start at all."""
    startup = _importtime("pass")
    mine = {k: v for k, v in _importtime(code).items() if k not in startup}
    return sorted(mine.items(), key=lambda kv: -kv[1])[:top]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs of `deepstation --help` (default 10)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed (default: report only, so "
                                                          "`make bench` runs every benchmark)")
    args = ap.parse_args(argv)

    exe = executable()
    contention = _common.Contention()
    times = time_help(exe, args.runs)
    med, best, worst = _common.median(times), min(times), max(times)
    bare = _common.median([t for t in [_python_start() for _ in range(5)]])

    light = heavy_modules("import deepstation")
    help_heavy = heavy_modules("import sys; sys.argv = ['deepstation', '--help']\n"
                               "from deepstation.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    slow = slowest_imports("import sys; sys.argv = ['deepstation', '--help']\nfrom deepstation.cli import main\n"
                           "try:\n    main()\nexcept SystemExit:\n    pass")
    ok_time, ok_import = med <= TARGET_S, "torch" not in light

    rows = [
        "| check | result | target |",
        "|---|---|---|",
        f"| `deepstation --help` wall time, median of {args.runs} | **{med:.3f} s** (min {best:.3f}, max {worst:.3f})"
        f"{'' if ok_time else ' ✗'} | <= {TARGET_S} s |",
        f"| bare `python -c pass` start, median of 5 (the floor) | {bare:.3f} s | |",
        f"| heavy packages after `import deepstation` | {', '.join(light) or 'none'}"
        f"{'' if ok_import else ' ✗'} | no torch |",
        f"| heavy packages after `deepstation --help` | {', '.join(help_heavy) or 'none'} | no torch |",
        "| slowest top-level imports of `--help` (cumulative) | "
        + ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in slow) + " | |",
    ]
    out = "\n".join(rows)
    print(out)
    noise = contention.report()
    print(noise)
    verdict = ok_time and ok_import and "torch" not in help_heavy
    print(f"targets: {'met' if verdict else 'NOT met'}")

    if not args.no_write:
        cmd = _common.command(f"{_common.python_cmd()} benchmarks/bench_cli.py"
                              + (f" --runs {args.runs}" if args.runs != 10 else ""))
        body = f"""## Command-line start-up

Command: `{cmd}` · {_common.today()}
Machine: {_common.machine()}

`{_common.rel(exe)} --help` timed through subprocess, as a user runs it (interpreter start included), after one
untimed warm-up run. The import checks run in fresh interpreters.

{out}

{noise}
"""
        _common.write_section("bench_cli", body)
        print(f"wrote {_common.rel(_common.RESULTS)}")
    return 1 if args.check and not verdict else 0


def _python_start() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    return time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
