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
    from deepstation.cli import check_runs_dir, render
    from deepstation.compare import compare
    from deepstation.training.progress import Bar, Silent

    check_runs_dir(args.runs_dir)
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
    in bold, whichever method it is; then a line per method saying what it is."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from deepstation.cli.render import _fmt
    from deepstation.compare import descriptions, losses_of_deep, methods

    deep, base, split = result["deep"], result["baseline"], result["split"]
    scored = methods(result, split)
    best = result.get("best", {})
    table = Table(title=f"{result['task']} ({split} split)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,  # borderless: 8 columns fit 80
                  caption="bold: the best on each metric", caption_justify="left")
    table.add_column("", no_wrap=True)
    for label, _ in scored:
        table.add_column(label.replace("_", "\n").replace("-", "-\n"), justify="right", no_wrap=True)
    for metric in dict.fromkeys(k for _, m in scored for k in m):
        table.add_row(metric, *[(f"[bold]{_brief(m.get(metric))}[/bold]" if label in best.get(metric, [])
                                 else _brief(m.get(metric))) for label, m in scored])
    extra = ["-"] * (len(scored) - 2)
    if base:
        table.add_row("training s", _fmt(deep["fit_seconds"]), _fmt(base["fit_seconds"]), *extra)
        table.add_row("ms / sample", _fmt(deep["predict_ms_per_sample"]), _fmt(base["predict_ms_per_sample"]), *extra)
        table.add_row("size", f"{deep['parameters']:,}", f"{base['size']:,}", *extra)
    lost = losses_of_deep(result)
    if lost:
        table.caption += "; deep loses on " + "; ".join(lost)
    legend = [f"{label}: {text}" if label != "hand-picked" else text for label, text in descriptions(result).items()]
    return Group(table, Text("\n".join(legend), style="dim"))


def _brief(value) -> str:
    """Four significant digits: eight methods side by side fit in 80 columns."""
    from deepstation.cli.render import _fmt

    if not isinstance(value, (int, float)) or abs(value) >= 1000:
        return _fmt(value)
    return f"{value:.4g}"
