"""Reports: one self-contained HTML file per comparison, with matplotlib plots inlined; and what the report and
the terminal table share: the methods' columns (a baseline that does not apply keeps its own, said so)."""
from __future__ import annotations


def fmt(value) -> str:
    """A metric for people: 4 decimals, thousands grouped for large values, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def not_applicable(result: dict) -> str | None:
    """Why the hand-picked baseline does not apply to the task (it has a "skipped" reason and no scores), or None
    when it applies or the task has none."""
    base = result.get("baseline")
    if not base or "metrics" in base and not base.get("skipped"):
        return None
    return base.get("skipped") or "the baseline gave no scores"


def scored(result: dict) -> dict:
    """The result as compare.methods/losses_of_deep read it: a baseline that does not apply is left out (it has
    no scores to rank, and is never counted as 0)."""
    return {**result, "baseline": None} if not_applicable(result) else result


def columns(result: dict, split: str) -> list[tuple[str, dict | None]]:
    """(label, metrics on the split) per method, in compare.methods' order; a baseline that does not apply keeps
    its place with None for its metrics."""
    from deepstation.compare import methods

    found = methods(scored(result), split)
    if not_applicable(result):
        found.insert(1, ("hand-picked", None))
    return found
