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


def run(args) -> int:
    import time

    from rich.table import Table

    from deepstation.cli import check_runs_dir, render
    from deepstation.cli.compare import comparison_table
    from deepstation.compare import HEADLINE, compare, losses_of_deep
    from deepstation.config import load_task
    from deepstation.training.progress import Bar

    check_runs_dir(args.runs_dir)
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
    for column in ("task", "metric (test)", "deep", "hand-picked", "best classical", "best", "report"):
        summary.add_column(column, justify="left" if column in ("task", "report", "metric (test)", "best") else "right")
    for name, metric, r in results:
        split = r["split"]
        ref = r.get("reference")
        cells = {"deep": r["deep"]["metrics"][split].get(metric),
                 "hand-picked": (r["baseline"] or {}).get("metrics", {}).get(split, {}).get(metric),
                 "classical": ref["metrics"]["test"].get(metric) if ref else None}
        winners = r.get("best", {}).get(metric, [])
        bold = {k: any(w == k or (k == "classical" and ref and w == ref["name"]) for w in winners) for k in cells}
        shown = [f"[bold]{render._fmt(v)}[/bold]" if bold[k] else render._fmt(v) for k, v in cells.items()]
        shown[2] = f"{shown[2]} ({ref['name']})" if ref else "-"
        summary.add_row(name, metric, *shown, ", ".join(winners) or "-", r["report"])
    out.print(summary, soft_wrap=True)
    for name, metric, r in results:  # said plainly, not only by a bold figure
        lost = [line for line in losses_of_deep(r) if line.startswith(f"{metric}:")]
        if lost:
            out.print(f"{name}: the deep model loses on {lost[0]}", soft_wrap=True)
    if args.json:
        render.print_json({"seconds": round(time.perf_counter() - began, 1),
                           "tasks": [{"task": n, "metric": m, **r} for n, m, r in results]})
    return 0
