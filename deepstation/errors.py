"""The errors a user sees: each one becomes a single line at the CLI edge."""
from __future__ import annotations


class DeepstationError(Exception):
    """A problem the user can fix. The message is one line: what, where, what was expected, what to do."""

    exit_code = 2


class TrainingError(DeepstationError):
    """Training stopped for a numerical reason (a NaN or inf loss); the last good checkpoint is kept."""

    exit_code = 1


def did_you_mean(value: str, choices) -> str:
    """' Did you mean `x`?' when a close choice exists, else ''."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""
