"""deepstation evaluate RUN_DIR [--data SOURCE]"""
from __future__ import annotations

from deepstation.cli import device_name, verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "evaluate", "Score a finished run on its own split, or on other labelled data.",
                    "deepstation evaluate runs/digits-cnn-20261127-101500 --data more.csv --json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", metavar="SOURCE", help="score every row of this file or folder instead")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--no-track", dest="track", action="store_false",
                   help="do not record the evaluation in the tracking store")
    p.set_defaults(run=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from deepstation.cli import check_run, render
    from deepstation.cli.train import unseen_warnings
    from deepstation.data.sources import describe_source
    from deepstation.errors import DeepstationError
    from deepstation.run import Run
    from deepstation.track.tracker import log_evaluation, open_store

    if args.data and not args.data.startswith("builtin:") and not Path(args.data).exists():
        raise DeepstationError(f"--data {args.data}: no such file or folder; pass labelled rows (a CSV or Parquet "
                               f"file, or a folder with an index CSV) to score the run on")
    check_run(args.run_dir)
    r = Run.load(args.run_dir, device=args.device)
    store = open_store(r.task, enabled=args.track)  # reachable, or a clear error, before evaluating
    began = time.monotonic()
    metrics = r.evaluate(args.data)
    source = args.data or describe_source(r.task.data.source)
    tracking_id = log_evaluation(store, r, metrics, source, time.monotonic() - began) if store else None
    out = render.console(args.json)
    for warning in unseen_warnings(r.unseen_labels):
        out.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    out.print(render.metrics_table(metrics, f"{r.id}" + (f" on {args.data}" if args.data else "")))
    if args.json:
        render.print_json({"run": r.id, "run_dir": str(r.dir.resolve()),
                           "data": args.data or describe_source(r.task.data.source),
                           "metrics": metrics, "unseen_labels": r.unseen_labels, "tracking_run_id": tracking_id})
    return 0
