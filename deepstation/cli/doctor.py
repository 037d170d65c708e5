"""deepstation doctor [--quick] [--only NAMES] [--json]"""
from __future__ import annotations

from deepstation.cli import verb_parser

COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def add_parser(sub, common):
    p = verb_parser(sub, common, "doctor", "Check this workstation: Python and the pinned stack, PyTorch on the CPU "
                    "and each GPU against its datasheet peak, Jupyter kernels, the tracking database, Ray, disk and "
                    "memory. Exit code 1 when a check fails.", "deepstation doctor --quick --only gpu,sql")
    p.add_argument("--quick", action="store_true", help="skip the slow checks (Jupyter kernels, Ray) and shrink the "
                   "GPU benchmark: a few seconds")
    p.add_argument("--only", metavar="NAMES", type=_names, help="only these checks, comma-separated (e.g. gpu,sql)")
    p.add_argument("--constraints", metavar="FILE", help="the pinned stack to compare with (default: constraints.txt "
                   "next to the source tree)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(run=run)


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def run(args) -> int:
    import sys

    from deepstation.cli import render
    from deepstation.workstation.doctor import diagnose, select

    from pathlib import Path

    from deepstation.errors import DeepstationError

    select(args.only)  # an unknown name is a one-line error before anything runs
    if args.constraints and not Path(args.constraints).is_file():
        raise DeepstationError(f"doctor --constraints: {args.constraints}: no such file; pass the repository's "
                               f"constraints.txt (or leave the option out)")
    out = render.console(args.json)
    if out.is_terminal:
        with out.status("doctor") as spinner:
            report = diagnose(quick=args.quick, only=args.only, constraints=args.constraints,
                              progress=lambda name: spinner.update(f"doctor: {name}"))
    else:
        report = diagnose(quick=args.quick, only=args.only, constraints=args.constraints)
    out.print(table(report))
    counts = {s: sum(c["status"] == s for c in report["checks"]) for s in COLOURS}
    out.print(f"{', '.join(f'{n} {s}' for s, n in counts.items() if n)} in {report['seconds']:.1f} s"
              + ("" if report["ok"] else "; fix the failed checks above"), soft_wrap=True)
    if args.json:
        render.print_json(report)
    sys.stdout.flush()
    return 0 if report["ok"] else 1


def table(report: dict):
    from rich.table import Table

    t = Table(title="deepstation doctor", title_justify="left")
    t.add_column("check", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("result")
    t.add_column("s", justify="right", no_wrap=True)
    for c in report["checks"]:
        t.add_row(c["name"], f"[{COLOURS[c['status']]}]{c['status']}[/]", _cell(c), f"{c['seconds']:.1f}")
    return t


def _cell(c: dict) -> str:
    """The detail, and for a check that is not ok its fix; both are plain text (they may hold [brackets])."""
    from rich.markup import escape

    detail = escape(c["detail"])
    return detail + (f"\n[bold]fix:[/] {escape(c['fix'])}" if c.get("fix") and c["status"] != "ok" else "")
