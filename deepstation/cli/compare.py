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
    from rich.table import Table

    from deepstation.cli.render import _fmt

    deep, base, split = result["deep"], result["baseline"], result["split"]
    reference = result.get("reference")
    table = Table(title=f"{result['task']} ({split} split)", title_justify="left")
    for title in ["", "deep (learned features)", "hand-picked features"] + (
            [f"{reference['name']} (classical)"] if reference else []):
        table.add_column(title, justify="right" if title else "left")
    for metric, value in deep["metrics"][split].items():
        row = [metric, _fmt(value), _fmt(base["metrics"][split].get(metric)) if base else "-"]
        table.add_row(*row + ([_fmt(reference["metrics"]["test"].get(metric))] if reference else []))
    extra = ["-"] if reference else []
    table.add_row("training time (s)", _fmt(deep["fit_seconds"]), _fmt(base["fit_seconds"]) if base else "-", *extra)
    table.add_row("inference (ms/sample)", _fmt(deep["predict_ms_per_sample"]),
                  _fmt(base["predict_ms_per_sample"]) if base else "-", *extra)
    table.add_row("parameters / stored numbers", f"{deep['parameters']:,}", f"{base['size']:,}" if base else "-",
                  *extra)
    return table
