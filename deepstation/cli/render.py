"""Rendering for people (rich tables) and for tools (one JSON object as the last line of stdout)."""
from __future__ import annotations

import json
import sys

from deepstation.report import fmt as _fmt  # noqa: F401  (used here and by the verbs)


# a pipe or a file has no width to fit: tables keep their whole rows (rich would cut them at 80 columns)
PIPE_WIDTH = 1000
RULE_WIDTH = 100  # the one thing that fills the whole width: a rule, kept to a line's usual length


def console(for_json: bool):
    """Human output goes to stderr when stdout is reserved for JSON. In a terminal, its width; to a pipe or a file,
    as wide as the output needs."""
    from rich.console import Console

    class Wide(Console):
        def rule(self, *args, **kwargs) -> None:
            from rich.rule import Rule

            self.print(Rule(*args, **kwargs), width=min(self.width, RULE_WIDTH))

    out = Console(stderr=for_json, highlight=False)
    if out.is_terminal:
        return out
    return Wide(stderr=for_json, highlight=False, width=PIPE_WIDTH)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def metrics_table(metrics: dict, title: str | None):
    """Splits as columns, metrics as rows."""
    from rich.table import Table

    splits = list(metrics)
    names = list(dict.fromkeys(k for m in metrics.values() for k in m))
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(name, *[_fmt(metrics[s].get(name)) for s in splits])
    return table
