"""Runs one check in this process and prints its results as one JSON line: the doctor starts the risky checks
(kernels, Ray, GPU work) this way, in a child process it can kill at the check's limit.

    python -m deepstation.workstation.checks NAME [--quick] [--constraints FILE] [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deepstation.workstation.checks")
    ap.add_argument("name")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--constraints", type=Path)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)

    from deepstation.workstation.checks import Context, fail, first_line, load_all

    found = load_all()[args.name]
    try:
        rows = found.run(Context(quick=args.quick, constraints=args.constraints, timeout=args.timeout))
    except Exception as err:  # noqa: BLE001 (reported as the check's failed row)
        rows = fail(first_line(err), found.fix)
    sys.stdout.write("\n" + json.dumps(rows if isinstance(rows, list) else [rows], default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
