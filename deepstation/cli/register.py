"""deepstation register RUN NAME"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "register",
                    "Register a finished run's model in the tracking store's model registry, as a new version of "
                    "NAME; then `deepstation predict models:/NAME/VERSION INPUT` uses it.",
                    "deepstation register digits-cnn-20261127-101500 digits")
    p.add_argument("ref", metavar="RUN", help="an MLflow run id, a prefix of one, or a run folder's name or path")
    p.add_argument("name", metavar="NAME", help="the registered model's name")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.cli import render
    from deepstation.track.registry import register
    from deepstation.track.runs import current_store

    found = register(current_store(), args.ref, args.name)
    out = render.console(args.json)
    out.print(f"registered {found['uri']} from run {found['run']}", soft_wrap=True, markup=False)
    if args.json:
        render.print_json(found)
    return 0
