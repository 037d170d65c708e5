"""deepstation usage [--by user|project|device|month] [--since DATE] [--json]"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "usage",
                    "Device time and estimated cost of the runs in the tracking store, summed by user, project "
                    "(experiment), device or month. Costs are estimates from a rate table (docs/tracking.md).",
                    "deepstation usage --by project --since 2026-11-01")
    p.add_argument("--by", choices=["user", "project", "device", "month"], default="user",
                   help="what to sum by (default: user)")
    p.add_argument("--since", metavar="DATE", help="only runs started on or after DATE (YYYY-MM-DD, UTC)")
    p.add_argument("--json", action="store_true", help="print one JSON array as the last line of stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from datetime import datetime, timezone

    from deepstation.cli import render
    from deepstation.errors import DeepstationError
    from deepstation.track import runs, usage

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise DeepstationError(f"--since {args.since}: expected a date as YYYY-MM-DD, such as 2026-11-01") from None
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    store = runs.current_store()
    rows = usage.summarise(store.search_runs(), runs.experiment_names(store), by=args.by, since=since)
    out = render.console(args.json)
    out.print(table(rows, args.by, store.shown))
    if args.json:
        render.print_json(rows)
    return 0


def table(rows: list, by: str, where: str):
    from rich.table import Table

    t = Table(title=f"usage in {where} (costs are estimates)", title_justify="left")
    for title in (by, "runs", "wall h", "device h", "cost $"):
        t.add_column(title, justify="left" if title == by else "right")
    for r in rows:
        cost = f"{r['cost_usd']:.4f}" if r["cost_usd"] >= 0.01 else f"{r['cost_usd']:.2g}"
        if r["unpriced_runs"]:
            cost += f" (+{r['unpriced_runs']} unpriced)"
        t.add_row(str(r[by]), str(r["runs"]), f"{r['wall_hours']:.4f}", f"{r['device_hours']:.4f}", cost)
    return t
