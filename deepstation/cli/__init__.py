"""The command line: one module per verb, each parsing, calling the library and rendering. Nothing heavy is
imported until a verb runs, so `deepstation --help` is quick."""
from __future__ import annotations

import argparse
import importlib
import sys

VERBS = ["train", "compare", "evaluate", "predict", "demo", "schema", "doctor", "env", "lab", "runs", "ui", "register",
         "usage"]

EPILOG = """examples:
  deepstation train examples/digits.yaml            train and test a CNN on scikit-learn's digits
  deepstation evaluate runs/digits-cnn-20261127-101500 --json
  deepstation predict runs/digits-cnn-20261127-101500 new.csv -o predictions.csv
  deepstation schema > task.schema.json             JSON Schema of the task YAML, for editors

Run `deepstation VERB --help` for a verb's options."""


def build_parser() -> argparse.ArgumentParser:
    from deepstation import __version__

    parser = argparse.ArgumentParser(
        prog="deepstation", description="Deep learning that learns its own features, from a task YAML.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"deepstation {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"deepstation.cli.{verb}").add_parser(sub, common)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verb:
        parser.print_help()
        return 2
    from deepstation.errors import DeepstationError

    try:
        return args.run(args) or 0
    except DeepstationError as err:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def verb_parser(sub, common, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A verb's parser; every verb's help ends with an example."""
    return sub.add_parser(name, help=summary, description=summary, parents=[common],
                          epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def training_options(p) -> None:
    """The options every verb that trains shares (train, compare)."""
    p.add_argument("--epochs", type=int, metavar="N", help="override trainer.epochs")
    p.add_argument("--device", metavar="DEVICE", help="override trainer.device: cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: $DEEPSTATION_RUNS_DIR or runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("--no-track", dest="track", action="store_false", default=None,
                   help="do not record the run in the tracking store (tracking.enabled: false)")
