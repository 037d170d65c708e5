"""deepstation schema"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "schema", "Print the task YAML's JSON Schema (for editor completion and checks).",
                    "deepstation schema > task.schema.json")
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from deepstation.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
