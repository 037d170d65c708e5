"""The command line as a whole: start-up cost, help with examples, the Python API's imports."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import cli
from deepstation.cli import VERBS


def test_import_does_not_pull_in_torch():
    code = "import sys, deepstation; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == \
        ["False", "False"]


def test_help_does_not_import_torch():
    code = ("import sys\nfrom deepstation.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("NO-TORCH") and "train" in out


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb):
    result = cli(verb, "--help", check=0)
    assert "example:" in result.stdout and f"deepstation {verb}" in result.stdout


def test_no_verb_shows_help_and_exits_2():
    result = cli()
    assert result.returncode == 2 and "examples:" in result.stdout


def test_unknown_option_exits_2():
    assert cli("train", "--epoch", "3").returncode == 2


def test_debug_shows_the_traceback(tmp_path):
    result = cli("train", tmp_path / "missing.yaml", "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr and "task file not found" in result.stderr


def test_the_entry_point_runs(tmp_path):
    result = cli("--version", subprocess_=True)
    assert result.returncode == 0 and result.stdout.startswith("deepstation ")
