"""deepstation runs list | show RUN | compare RUN RUN | sync [RUN_DIR...]"""
from __future__ import annotations

from deepstation.cli import verb_parser

SUMMARY = "The runs in the tracking store (MLflow): list them, show one, compare two, sync run folders."


def add_parser(sub, common):
    p = verb_parser(sub, common, "runs", SUMMARY, "deepstation runs list --limit 10\n  deepstation runs show 3f2a91c\n"
                    "  deepstation runs compare digits-cnn-20261127-101500 digits-cnn-20261127-104512")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", parents=[common], help="the newest runs, as a table (closes runs whose "
                            "process died, sends run folders' unsent metrics)")
    ls.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    ls.add_argument("--experiment", metavar="NAME", help="only this experiment (default: all)")
    ls.add_argument("--json", action="store_true", help="print one JSON array as the last line of stdout")
    show = actions.add_parser("show", parents=[common], help="one run: status, metrics, params, artifacts")
    show.add_argument("ref", metavar="RUN", help="an MLflow run id, a prefix of one, or a run folder's name or path")
    show.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    cmp_ = actions.add_parser("compare", parents=[common], help="two runs side by side: metrics, differing params")
    cmp_.add_argument("refs", metavar="RUN", nargs=2)
    cmp_.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    sync = actions.add_parser("sync", parents=[common], help="send what run folders hold and the store lacks "
                              "(after the store was unreachable)")
    sync.add_argument("dirs", metavar="RUN_DIR", nargs="*", help="run folders (default: every one under the runs "
                      "folder with something to send)")
    p.set_defaults(run=run, action=None)


def run(args) -> int:
    from pathlib import Path

    from deepstation import files
    from deepstation.cli import render
    from deepstation.errors import DeepstationError
    from deepstation.track import runs

    if args.action is None:
        raise DeepstationError("runs: say what to do: list, show RUN, compare RUN RUN or sync [RUN_DIR...] "
                               "(`deepstation runs --help`)")
    store = runs.current_store()
    if args.action == "sync":
        for path in args.dirs:
            if not Path(path).is_dir():
                raise DeepstationError(f"runs sync {path}: no such folder; pass run folders (under "
                                       f"{files.runs_dir()}), or none to sync every one that has something to send")
        paths = args.dirs or runs.pending_folders(files.runs_dir(), store)
        for line in runs.sync(paths) or ["nothing to sync"]:
            print(line)
        return 0
    out = render.console(args.json)
    if args.action == "list":
        runs.sync(runs.pending_folders(files.runs_dir(), store), quiet_running=True)
        rows = runs.list_runs(store, limit=args.limit, experiment=args.experiment)
        out.print(list_table(rows, store.shown))
        if args.json:
            render.print_json(rows)
    elif args.action == "show":
        found = runs.show(store, args.ref)
        for line in show_lines(found):
            out.print(line, soft_wrap=True, markup=False)
        if args.json:
            render.print_json(found)
    else:
        found = runs.compare(store, *args.refs)
        out.print(compare_table(found))
        if args.json:
            render.print_json(found)
    return 0


def list_table(rows: list, where: str):
    from rich.table import Table

    from deepstation.cli.render import _fmt

    table = Table(title=f"runs in {where}", title_justify="left")
    for title in ("id", "run folder", "status", "started", "time", "user", "metric", "device", "cost $"):
        table.add_column(title, justify="right" if title in ("time", "cost $") else "left",
                         no_wrap=title in ("id", "run folder"))
    for r in rows:
        found = r.get("headline")  # the task's monitored metric, or its first output's main one
        metric = "-" if not found else f"{found['metric'].removeprefix('test.')} {_fmt(found['value'])}"
        device = f"{r['device_count']} {r['device']}" if r.get("device") else "-"
        started = (r["start"] or "-")[5:16].replace("T", " ")  # MM-DD HH:MM, UTC
        table.add_row(r["tracking_id"][:8], r["run"] or "-", r["status"].lower(), started, _duration(r["duration_s"]),
                      r["user"] or "-", metric, device, _cost(r.get("cost_usd")))
    return table


def show_lines(found: dict) -> list[str]:
    from deepstation.cli.render import _fmt

    lines = [f"{found['tracking_id']}  {found['run'] or ''}  ({found['kind'] or 'run'}, {found['status'].lower()})",
             f"experiment {found['experiment']}, user {found['user']}, started {found['start']}, "
             f"{_duration(found['duration_s'])}",
             f"run folder: {found['run_dir'] or '-'}", f"artifacts: {found['artifact_uri']}"]
    if found.get("device"):
        cost = f", ${_cost(found['cost_usd'])}" if found.get("cost_usd") is not None else ""
        lines.append(f"device: {found['device_count']} x {found['device']}{cost}")
    lines.append("metrics:")
    lines += [f"  {k} = {_fmt(v)}" for k, v in found["metrics"].items()]
    lines.append("params:")
    lines += [f"  {k} = {v}" for k, v in found["params"].items()]
    if found["artifacts"]:
        lines.append("files: " + ", ".join(found["artifacts"]))
    return lines


def compare_table(found: dict):
    from rich.table import Table

    from deepstation.cli.render import _fmt

    table = Table(title="runs compared", title_justify="left")
    table.add_column("")
    for run_id, name in zip(found["runs"], found["names"]):
        table.add_column(f"{run_id[:8]} {name or ''}", justify="right")
    for k, (a, b) in found["metrics"].items():
        table.add_row(k, _fmt(a), _fmt(b))
    for k, (a, b) in found["params"].items():
        table.add_row(f"param {k}", str(a), str(b))
    return table


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _cost(value) -> str:
    return "-" if value is None else f"{value:.4f}" if value >= 0.01 else f"{value:.2g}"
