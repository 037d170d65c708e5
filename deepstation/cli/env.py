"""deepstation env snapshot [-o FILE] | deepstation env check FILE [--json]"""
from __future__ import annotations

import argparse

from deepstation.cli import verb_parser

SNAPSHOT_EXAMPLE = "deepstation env snapshot -o team-env.json"
CHECK_EXAMPLE = "deepstation env check team-env.json"


def add_parser(sub, common):
    p = verb_parser(sub, common, "env", "The same setup for the whole team: snapshot this machine's environment "
                    "(Python, packages, torch build, CUDA, driver, GPUs, OS) to a JSON file, or check this machine "
                    "against one (exit code 1 when a package of the snapshot is missing or has another version).",
                    f"{SNAPSHOT_EXAMPLE}\n  {CHECK_EXAMPLE}")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    # --debug after the action too; SUPPRESS keeps `env --debug check` from being reset by the action's default
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    snap = actions.add_parser("snapshot", parents=[debug], help="record this machine's environment as JSON",
                              description="Record Python, every installed package, the torch build, CUDA/cuDNN, the "
                              "NVIDIA driver, the GPUs and the OS as JSON (to stdout, or to a file with -o).",
                              epilog=f"example:\n  {SNAPSHOT_EXAMPLE}", formatter_class=p.formatter_class)
    snap.add_argument("-o", "--output", metavar="FILE", help="write the snapshot here (atomically) instead of stdout")
    snap.set_defaults(run=run)
    chk = actions.add_parser("check", parents=[debug], help="compare this machine with a snapshot",
                             description="List each difference between this machine and a snapshot: packages "
                             "missing, extra or of another version, Python, torch build, CUDA, driver, GPUs, OS. Exit "
                             "code 1 when a package of the snapshot is missing or differs; the rest are notes.",
                             epilog=f"example:\n  {CHECK_EXAMPLE} --json", formatter_class=p.formatter_class)
    chk.add_argument("file", help="a snapshot made by `deepstation env snapshot -o FILE`")
    chk.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    chk.set_defaults(run=run)
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.errors import DeepstationError

    if args.action == "snapshot":
        return snapshot(args)
    if args.action == "check":
        return check(args)
    raise DeepstationError(f"env: say what to do: `{SNAPSHOT_EXAMPLE}` or `{CHECK_EXAMPLE}`")


def snapshot(args) -> int:
    import json
    import sys

    from deepstation.workstation import envsnap

    if args.output:
        from pathlib import Path

        from deepstation.cli import check_output

        check_output(args.output, "env.json")
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        snap = envsnap.save(args.output)
        print(f"wrote {args.output}: Python {snap['python']['version']}, {len(snap['packages'])} packages, "
              f"torch {(snap['torch'] or {}).get('version', 'not installed')}, {len(snap['gpus'])} GPU(s)")
    else:
        sys.stdout.write(json.dumps(envsnap.snapshot(), indent=2) + "\n")
    return 0


def check(args) -> int:
    from deepstation.cli import render
    from deepstation.workstation import envsnap

    theirs = envsnap.load(args.file)
    report = {"file": args.file, "created": theirs.get("created"), "host": theirs.get("host"),
              **envsnap.compare(theirs)}
    out = render.console(args.json)
    diffs = report["differences"]
    if diffs:
        out.print(table(diffs, args.file))
    fails, notes = report["failing"], len(diffs) - report["failing"]
    made = f" (made {theirs['created']} on {theirs.get('host', '?')})" if theirs.get("created") else ""
    if fails:
        out.print(f"[red]{fails} pinned package(s) differ[/] from {args.file}{made}; {notes} note(s). To match it: "
                  f"pip install the versions in the `snapshot` column", soft_wrap=True)
    else:
        out.print(f"[green]the {report['packages']['snapshot']} packages of {args.file} match[/]{made}"
                  + (f"; {notes} note(s)" if notes else ""), soft_wrap=True)
    if args.json:
        render.print_json(report)
    return 1 if fails else 0


def table(diffs: list[dict], file: str):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"this machine against {escape(file)}", title_justify="left")
    for column in ("what", "name", "snapshot", "here", "effect"):
        t.add_column(column)
    for d in sorted(diffs, key=lambda d: (not d["fails"], d["what"], d["name"])):
        effect = "[red]differs[/]" if d["fails"] else "[dim]note[/]"
        t.add_row(d["what"], escape(str(d["name"])), _cell(d["snapshot"]), _cell(d["here"]), effect)
    return t


def _cell(value) -> str:
    from rich.markup import escape

    if value is None:
        return "-"
    if isinstance(value, list):
        return escape(", ".join(map(str, value)))
    return escape(str(value))
