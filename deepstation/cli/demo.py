"""deepstation demo: the seed tour, each task compared with its hand-picked baseline."""
from __future__ import annotations

from deepstation.cli import verb_parser

TOUR = ["examples/digit-captions.yaml", "examples/airline.yaml", "examples/speech-digits.yaml"]


def add_parser(sub, common):
    p = verb_parser(sub, common, "demo",
                    "The seed tour: image -> caption, series -> prices, audio -> transcript; each deep model beside "
                    "its hand-picked-features baseline, then one summary table.",
                    "deepstation demo --tasks examples/digit-captions.yaml")
    p.add_argument("--tasks", nargs="+", metavar="TASK", default=TOUR, help="task YAMLs (default: the seed tour)")
    p.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: $DEEPSTATION_RUNS_DIR or runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(run=run)


# the metric each kind of task is judged by in the summary
HEADLINE = {"sequence": "wer", "category": "accuracy", "number": "mape"}


def run(args) -> int:
    import time

    from rich.table import Table

    from deepstation.cli import render
    from deepstation.cli.compare import comparison_table
    from deepstation.compare import compare
    from deepstation.config import load_task
    from deepstation.training.progress import Bar

    out = render.console(args.json)
    began, results = time.perf_counter(), []
    for path in args.tasks:
        task = load_task(path)
        out.rule(f"{task.name}  ({path})")
        result = compare(task, runs_dir=args.runs_dir, progress=Bar(out))
        out.print(comparison_table(result))
        metric = HEADLINE[task.outputs[0].type]
        results.append((task.name, metric, result))
    summary = Table(title=f"seed tour: {time.perf_counter() - began:.0f} s", title_justify="left")
    for column in ("task", "metric (test)", "deep", "hand-picked", "classical", "report"):
        summary.add_column(column, justify="left" if column in ("task", "report", "metric (test)") else "right")
    for name, metric, r in results:
        split = r["split"]
        summary.add_row(name, metric, render._fmt(r["deep"]["metrics"][split].get(metric)),
                        render._fmt(r["baseline"]["metrics"][split].get(metric)) if r["baseline"] else "-",
                        render._fmt(r["reference"]["metrics"]["test"].get(metric)) if r.get("reference") else "-",
                        r["report"])
    out.print(summary, soft_wrap=True)
    if args.json:
        render.print_json({"seconds": round(time.perf_counter() - began, 1),
                           "tasks": [{"task": n, "metric": m, **r} for n, m, r in results]})
    return 0
