"""deepstation usage (being built)"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "usage", "(being built)", "deepstation usage")
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.errors import DeepstationError

    raise DeepstationError("usage: not built yet")
