"""deepstation env snapshot / env check: what a snapshot records, how this machine is compared with one, and the
command line's exit codes."""
from __future__ import annotations

import copy
import json
import platform
import sys
from unittest import mock

import pytest

from conftest import cli, last_json, user_error
from deepstation.workstation import envsnap


@pytest.fixture(scope="module")
def here() -> dict:
    """This machine's snapshot, made once (nvidia-smi hidden so the driver and GPUs are predictable)."""
    with mock.patch("deepstation.workstation.envsnap.shutil.which", return_value=None):
        return envsnap.snapshot()


def test_snapshot_records_the_environment(here):
    import torch

    assert here["kind"] == envsnap.KIND and here["format"] == 1 and here["created"].endswith("+00:00")
    assert here["python"] == {"version": platform.python_version(), "implementation": platform.python_implementation(),
                              "executable": sys.executable}
    names = list(here["packages"])
    assert names == sorted(names) and "jupyter-client" in names and "jupyter_client" not in names
    assert all(n == envsnap.normalise(n) for n in names)
    assert here["packages"]["torch"] == torch.__version__ and here["packages"]["deepstation"]
    assert here["torch"]["version"] == torch.__version__
    assert here["torch"]["build"] == (f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu")
    assert here["nvidia_driver"] is None
    assert here["os"]["system"] == platform.system() and "os_release" in here["os"]
    json.dumps(here)  # plain JSON


def test_driver_and_gpus_come_from_nvidia_smi():
    smi = mock.Mock(returncode=0, stdout="NVIDIA H100 80GB HBM3, 81559, 560.35.03\nNVIDIA H100 80GB HBM3, 81559, "
                                         "560.35.03\n")
    with mock.patch("deepstation.workstation.envsnap.shutil.which", return_value="/usr/bin/nvidia-smi"), \
            mock.patch("deepstation.workstation.envsnap.subprocess.run", return_value=smi):
        assert envsnap.nvidia_smi() == {"driver": "560.35.03", "gpus": [
            {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.6}] * 2}
        assert envsnap.gpus()[0]["name"] == "NVIDIA H100 80GB HBM3"


def test_same_machine_has_no_differences(here):
    report = envsnap.compare(here, envsnap.snapshot())  # made again: the same machine, a later moment
    assert report["ok"] and report["differences"] == [] and report["failing"] == 0


def test_pinned_package_differences_fail(here):
    theirs = copy.deepcopy(here)
    theirs["packages"]["rich"] = "0.0.1"
    theirs["packages"]["No_Such.Package"] = "1.0"  # spelt another way: normalised before comparing
    report = envsnap.compare(theirs, here)
    found = {(d["what"], d["name"]): d for d in report["differences"]}
    assert found[("package version", "rich")]["here"] == here["packages"]["rich"]
    assert found[("package version", "rich")]["snapshot"] == "0.0.1"
    assert found[("package missing", "no-such-package")]["fails"]
    assert report["failing"] == 2 and not report["ok"]


def test_extra_packages_os_gpu_and_driver_are_notes(here):
    theirs = copy.deepcopy(here)
    del theirs["packages"]["rich"]
    theirs["python"]["version"] = "3.12.1"
    theirs["torch"] = {"version": "2.13.0+cu128", "build": "cuda 12.8", "cuda": "12.8", "cudnn": 91000}
    theirs["nvidia_driver"] = "570.86.10"
    theirs["gpus"] = [{"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.6}]
    theirs["os"] = {**theirs["os"], "system": "Darwin", "os_release": {"PRETTY_NAME": "macOS"}}
    report = envsnap.compare(theirs, here)
    kinds = {d["what"] for d in report["differences"]}
    assert {"package extra", "python", "torch build", "cuda", "cudnn", "driver", "gpus", "os"} <= kinds
    assert report["ok"] and report["failing"] == 0


def test_cli_snapshot_then_check(tmp_path):
    out = tmp_path / "team-env.json"
    result = cli("env", "snapshot", "-o", out, check=0)
    assert "wrote" in result.stdout and json.loads(out.read_text())["kind"] == envsnap.KIND
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the atomic write's temp file is gone
    result = cli("env", "check", out, check=0)
    assert "match" in result.stdout


def test_cli_snapshot_to_stdout():
    snap = json.loads(cli("env", "snapshot", check=0).stdout)
    assert snap["kind"] == envsnap.KIND and snap["packages"]


def test_cli_check_exit_codes_and_json(tmp_path, here):
    theirs = copy.deepcopy(here)
    theirs["packages"]["rich"] = "0.0.1"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(theirs))
    result = cli("env", "check", changed)
    assert result.returncode == 1 and "rich" in result.stdout and "differs" in result.stdout

    result = cli("env", "check", changed, "--json")
    report = last_json(result.stdout)
    assert result.returncode == 1 and report["failing"] >= 1 and report["file"] == str(changed)
    assert {"what", "name", "snapshot", "here", "fails"} == set(report["differences"][0])

    theirs = copy.deepcopy(here)
    del theirs["packages"]["rich"]  # only an extra package here: a note
    theirs["os"]["system"] = "Darwin"
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps(theirs))
    result = cli("env", "check", notes, "--json")
    assert result.returncode == 0 and last_json(result.stdout)["ok"]


@pytest.mark.parametrize("content", ['{"a": 1}', "not json at all", "[1, 2]",
                                     '{"kind": "something-else", "python": {}, "packages": {}}'])
def test_cli_check_of_a_file_that_is_not_a_snapshot(tmp_path, content):
    path = tmp_path / "x.json"
    path.write_text(content)
    line = user_error(cli("env", "check", path))
    assert "not an environment snapshot" in line and "env snapshot" in line


def test_cli_check_of_a_missing_file():
    line = user_error(cli("env", "check", "nope.json"))
    assert "no such file" in line


def test_cli_env_without_an_action():
    line = user_error(cli("env"))
    assert "env snapshot" in line and "env check" in line


def test_cli_env_help_has_examples():
    assert "example:\n  deepstation env snapshot -o team-env.json" in cli("env", "--help").stdout
    assert "example:\n  deepstation env check" in cli("env", "check", "--help").stdout
    assert "example:\n  deepstation env snapshot" in cli("env", "snapshot", "--help").stdout
