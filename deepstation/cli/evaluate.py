"""deepstation evaluate RUN_DIR [--data SOURCE]"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "evaluate", "Score a finished run on its own split, or on other labelled data.",
                    "deepstation evaluate runs/digits-cnn-20261127-101500 --data more.csv --json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", metavar="SOURCE", help="score every row of this file or folder instead")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.cli import render
    from deepstation.cli.train import unseen_warnings
    from deepstation.run import Run

    r = Run.load(args.run_dir, device=args.device)
    metrics = r.evaluate(args.data)
    out = render.console(args.json)
    for warning in unseen_warnings(r.unseen_labels):
        out.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    out.print(render.metrics_table(metrics, f"{r.id}" + (f" on {args.data}" if args.data else "")))
    if args.json:
        render.print_json({"run": r.id, "run_dir": str(r.dir.resolve()), "data": args.data or r.task.data.source,
                           "metrics": metrics, "unseen_labels": r.unseen_labels})
    return 0
