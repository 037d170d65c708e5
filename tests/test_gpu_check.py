"""benchmarks/gpu_check.sh (GPU readiness) without CUDA: one line, exit code 0, nothing written; and the helper that
puts its section into RESULTS.md."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_skips_cleanly_without_cuda(tmp_path):
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_CHECK_", "DEEPSTATION_MAX_EPOCHS"))}
    env.update(PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", GPU_CHECK_WORK=str(tmp_path / "work"),
               OUT=str(tmp_path / "out"))
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA GPU here (torch "), done.stdout
    assert lines[0].endswith("; skipped")
    assert done.stderr == ""
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
    assert results.read_bytes() == before


def _helper():
    spec = importlib.util.spec_from_file_location("gpu_check_helper", ROOT / "benchmarks" / "gpu_check_helper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_section_goes_before_the_hand_written_notes_and_is_replaced(tmp_path):
    helper = _helper()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- a:start -->\n## A\n<!-- a:end -->\n\n## Missed targets\nby hand\n")
    helper.write_section(results, "## GPU check\nfirst")
    helper.write_section(results, "## GPU check\nsecond")
    text = results.read_text()
    assert text.count("<!-- gpu_check:start -->") == 1 and "first" not in text
    assert text.index("<!-- a:end -->") < text.index("second") < text.index("## Missed targets")
    assert text.endswith("## Missed targets\nby hand\n")
