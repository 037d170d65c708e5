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
    """Metrics as rows, methods as columns (deep, hand-picked, each classical reference); in bold the winners
    compare.winners found (result["best"]), whichever method they are; a baseline that does not apply shows n/a
    and why; then a line per method saying what it is."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from deepstation.cli.render import _fmt
    from deepstation.compare import descriptions, losses_of_deep
    from deepstation.report import columns, not_applicable, scored

    deep, base, split = result["deep"], result.get("baseline"), result["split"]
    shown = columns(result, split)
    best = result.get("best", {})
    reason = not_applicable(result)
    # borderless: 8 columns fit 80; the title and the notes below are lines of their own, not wrapped to the table
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    for label, _ in shown:
        table.add_column(escape(label.replace("_", "\n").replace("-", "-\n")), justify="right", no_wrap=True)
    for metric in dict.fromkeys(k for _, m in shown for k in m or {}):
        table.add_row(escape(metric), *[_cell(m, metric, label in best.get(metric, [])) for label, m in shown])
    extra = ["-"] * (len(shown) - 2)
    if base:  # a baseline that does not apply was neither fitted nor timed
        table.add_row("training s", _fmt(deep["fit_seconds"]), "n/a" if reason else _fmt(base["fit_seconds"]), *extra)
        table.add_row("ms / sample", _fmt(deep["predict_ms_per_sample"]),
                      "n/a" if reason else _fmt(base["predict_ms_per_sample"]), *extra)
        table.add_row("size", f"{deep['parameters']:,}", "n/a" if reason else f"{base['size']:,}", *extra)
    lost = losses_of_deep(scored(result))
    caption = "bold: the best on each metric" + ("; deep loses on " + "; ".join(lost) if lost else "")
    legend = [f"{label}: {text}" if label != "hand-picked" else text + (f" (not applicable: {reason})" if reason
                                                                         else "")
              for label, text in descriptions(result).items()]
    return Group(Text(f"{result['task']} ({split} split)", style="italic"), table, Text(caption),
                 Text("\n".join(legend), style="dim"))


def _cell(metrics: dict | None, metric: str, best: bool) -> str:
    """One method's figure: n/a for a baseline that does not apply (never a score), bold for a winner."""
    if metrics is None:
        return "n/a"
    return f"[bold]{_brief(metrics.get(metric))}[/bold]" if best else _brief(metrics.get(metric))


def _brief(value) -> str:
    """Four significant digits: eight methods side by side fit in 80 columns."""
    from deepstation.cli.render import _fmt

    if not isinstance(value, (int, float)) or abs(value) >= 1000:
        return _fmt(value)
    return f"{value:.4g}"
