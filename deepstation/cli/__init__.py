"""The command line: one module per verb, each parsing, calling the library and rendering. Nothing heavy is
imported until a verb runs, so `deepstation --help` is quick."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

VERBS = ["train", "compare", "evaluate", "predict", "demo", "schema", "doctor", "env", "lab", "runs", "ui", "register",
         "usage", "export", "serve"]

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
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`deepstation predict RUN in.csv | head -1`): stop quietly, as `cat` would. Python
        # flushes stdout again at exit and would fail once more, so stdout now points at /dev/null
        _detach_stdout()
        return 128 + 13  # what a shell reports for a process ended by SIGPIPE


def _main(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # `--help | head -1`: a closed pipe shows up here, where main() handles it
        raise
    if not args.verb:
        parser.print_help()
        return 2
    from deepstation.errors import DeepstationError

    try:
        code = args.run(args) or 0
        sys.stdout.flush()  # here, not at exit, so a closed pipe reaches main()
        return code
    except DeepstationError as err:
        _traceback(args)
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        message = _environment_error(err)
        if message is None:  # anything else is a bug: its traceback is what a report needs
            raise
        _traceback(args)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _environment_error(err: OSError) -> str | None:
    """One line for a file system that refuses a write the user asked for (permissions, a full or read-only disk),
    None for any other OSError."""
    import errno

    hints = {errno.EACCES: "check the folder's permissions or choose another place",
             errno.EPERM: "check the folder's permissions or choose another place",
             errno.ENOSPC: "free some space or choose another disk",
             errno.EROFS: "choose a writable place"}
    if hasattr(errno, "EDQUOT"):  # not on Windows
        hints[errno.EDQUOT] = "free some space or ask for a larger quota"
    if err.errno not in hints or not err.filename:
        return None
    return f"{err.filename}: {err.strerror.lower() if err.strerror else err}; {hints[err.errno]}"


def _traceback(args) -> None:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc()


def _detach_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is no file (a test's StringIO)
        pass


def verb_parser(sub, common, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A verb's parser; every verb's help ends with an example."""
    return sub.add_parser(name, help=summary, description=summary, parents=[common],
                          epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def check_runs_dir(given) -> None:
    """--runs-dir (or $DEEPSTATION_RUNS_DIR) must be a folder, or a path where one can be made."""
    from deepstation.errors import DeepstationError
    from deepstation.files import RUNS_DIR_ENV, runs_dir

    path = runs_dir(given)
    named = f"--runs-dir {given}" if given else f"${RUNS_DIR_ENV}={path}" if os.environ.get(RUNS_DIR_ENV) else str(path)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        what = "is a file" if blocker == path else f"cannot be made: {blocker} is a file"
        raise DeepstationError(f"{named}: {what}; pass a folder for the run folders (a missing one is created)")


def check_run(ref: str) -> None:
    """A run folder (or models:/NAME/VERSION) that exists; for a bare run name, the folder it likely means."""
    from pathlib import Path

    from deepstation.errors import DeepstationError
    from deepstation.files import runs_dir

    if ref.startswith("models:/") or Path(ref).exists():
        return
    guess = runs_dir() / ref
    hint = f"; did you mean {guess}?" if guess.is_dir() else \
        f"; pass a run folder made by `deepstation train` (under {runs_dir()}), or models:/NAME/VERSION"
    raise DeepstationError(f"{ref}: no such run folder{hint}")


def check_output(path: str, example: str, option: str = "-o"):
    """The file a verb is to write: not a folder, and its folder exists or can be made (the verb makes it,
    like mkdir -p, once it has something to write). Checked before the work, so a mistake costs nothing."""
    from pathlib import Path

    from deepstation.errors import DeepstationError

    out = Path(path)
    if out.is_dir():
        raise DeepstationError(f"{option} {path}: is a folder; pass a file name, such as {out / example}")
    blocker = _file_in_the_way(out.parent)
    if blocker is not None:
        raise DeepstationError(f"{option} {path}: its folder cannot be made, as {blocker} is a file; choose another "
                               f"place")
    return out


def _file_in_the_way(folder):
    """The nearest existing path at or above `folder` when it is not a folder (so `folder` cannot be one), else
    None."""
    for place in (folder, *folder.parents):
        if place.exists():
            return None if place.is_dir() else place
    return None


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


def positive(value: str) -> float:
    """An argparse type: a finite number above 0."""
    return _number(value, lambda n: n > 0, "a positive number")


def non_negative(value: str) -> float:
    """An argparse type: a finite number of at least 0 (0.5 GPUs, 0 ms)."""
    return _number(value, lambda n: n >= 0, "a number of at least 0")


def _number(value: str, fits, expected: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (fits(number) and number != float("inf")):  # NaN fits nothing
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return number


def device_name(value: str) -> str:
    """An argparse type: a device as trainer.device takes it."""
    import re

    from deepstation.config import DEVICE_PATTERN

    if not re.fullmatch(DEVICE_PATTERN, value):
        from deepstation.errors import did_you_mean

        hint = " Did you mean `cuda`?" if value.lower().startswith(("gpu", "nvidia")) else \
            did_you_mean(value, ["auto", "cpu", "cuda", "mps"])
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}.{hint}")
    return value


def training_options(p) -> None:
    """The options every verb that trains shares (train, compare)."""
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override trainer.epochs")
    p.add_argument("--device", type=device_name, metavar="DEVICE",
                   help="override trainer.device: cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: $DEEPSTATION_RUNS_DIR or runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("--no-track", dest="track", action="store_false", default=None,
                   help="do not record the run in the tracking store (tracking.enabled: false)")
