"""Rendering for people (rich tables) and for tools (one JSON object as the last line of stdout)."""
from __future__ import annotations

import json
import sys


def console(for_json: bool):
    """Human output goes to stderr when stdout is reserved for JSON."""
    from rich.console import Console

    return Console(stderr=for_json, highlight=False)


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


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.1f}"
    return str(value)
