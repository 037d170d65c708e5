"""deepstation register (being built)"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "register", "(being built)", "deepstation register")
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.errors import DeepstationError

    raise DeepstationError("register: not built yet")
