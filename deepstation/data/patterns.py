"""Column patterns: any `columns:` (or `categorical:`) list of a task may hold shell-style patterns ("v*",
"sensor_[0-9]*"), expanded against the table's columns in their order in the file, before anything is read."""
from __future__ import annotations

import fnmatch
import re

from deepstation.errors import DeepstationError, did_you_mean

PATTERN = re.compile(r"[*?\[]")
FIELDS = ("columns", "categorical")


def expand_patterns(task, table):
    """The task with every column pattern replaced by the columns it matches (each pattern's matches in file
    order, a column named twice kept once). A pattern that matches nothing stops with the columns there are."""
    # never matched: what the task reads otherwise (an output's answer, the split, a series' id, step or date)
    taken = {o.column for o in task.outputs} | {task.data.split.column}
    taken |= {getattr(i, k, None) for i in task.inputs for k in ("id", "order", "date")}
    have = [str(c) for c in table.frame.columns if not str(c).startswith("__") and str(c) not in taken]
    inputs, changed = [], False
    for inp in task.inputs:
        update = {}
        for key in FIELDS:
            names = getattr(inp, key, None)
            if names and any(PATTERN.search(n) for n in names):
                update[key] = _expand(names, have, table.origin, f"inputs.{inp.name}.{key}")
        inputs.append(inp.model_copy(update=update) if update else inp)
        changed = changed or bool(update)
    return task.model_copy(update={"inputs": inputs}) if changed else task


def _expand(names: list[str], have: list[str], origin: str, field: str) -> list[str]:
    found = []
    for name in names:
        if not PATTERN.search(name):
            found.append(name)
            continue
        matched = [c for c in have if fnmatch.fnmatchcase(c, name)]
        if not matched:
            shown = ", ".join(have[:12]) + (f", ... ({len(have)} in all)" if len(have) > 12 else "")
            raise DeepstationError(f"{origin}: the pattern {name!r} ({field}) matches no column; the columns are "
                                   f"{shown}." + did_you_mean(name.strip("*?[]"), have))
        found += matched
    return list(dict.fromkeys(found))
