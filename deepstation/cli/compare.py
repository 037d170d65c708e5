"""deepstation compare TASK.yaml"""
from __future__ import annotations

from deepstation.cli import training_options, verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "compare",
                    "Train the deep model and the hand-picked-features baseline on the same split; print them side "
                    "by side and write an HTML report.", "deepstation compare examples/digit-captions.yaml")
    p.add_argument("task", help="the task YAML")
    training_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.cli import render
    from deepstation.compare import compare
    from deepstation.training.progress import Bar, Silent

    out = render.console(args.json)
    result = compare(args.task, epochs=args.epochs, device=args.device, runs_dir=args.runs_dir,
                     progress=Silent() if args.quiet else Bar(out), track=args.track)
    if not args.quiet:
        out.print(comparison_table(result))
        out.print(f"report: {result['report']}", soft_wrap=True)
    if args.json:
        render.print_json(result)
    return 0


def comparison_table(result: dict):
    """Metrics as rows, methods as columns (deep, hand-picked, each classical reference); the best on each metric
    in bold, whichever method it is."""
    from rich.table import Table

    from deepstation.cli.render import _fmt
    from deepstation.compare import losses_of_deep, methods

    deep, base, split = result["deep"], result["baseline"], result["split"]
    scored = methods(result, split)
    best = result.get("best", {})
    table = Table(title=f"{result['task']} ({split} split; bold: best)", title_justify="left")
    titles = {"deep": "deep (learned features)", "hand-picked": "hand-picked features"}
    table.add_column("")
    for label, _ in scored:
        table.add_column(titles.get(label, label), justify="right")
    for metric in dict.fromkeys(k for _, m in scored for k in m):
        table.add_row(metric, *[(f"[bold]{_fmt(m.get(metric))}[/bold]" if label in best.get(metric, [])
                                 else _fmt(m.get(metric))) for label, m in scored])
    extra = ["-"] * (len(scored) - 2)
    if base:
        table.add_row("training time (s)", _fmt(deep["fit_seconds"]), _fmt(base["fit_seconds"]), *extra)
        table.add_row("inference (ms/sample)", _fmt(deep["predict_ms_per_sample"]),
                      _fmt(base["predict_ms_per_sample"]), *extra)
        table.add_row("parameters / stored numbers", f"{deep['parameters']:,}", f"{base['size']:,}", *extra)
    lost = losses_of_deep(result)
    if lost:
        table.caption = "deep loses on " + "; ".join(lost)
        table.caption_justify = "left"
    return table
