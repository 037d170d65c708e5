"""Shared by the benchmark scripts: where RESULTS.md is, the machine's description, and rewriting one section
of RESULTS.md in place (atomically: a reader sees the old file or the new one, never half of one)."""
from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADER = ("# Benchmark results\n\n"
          "Every figure here comes with the exact command that made it, the date and the machine; each section is "
          "rewritten in place by its script (between its `<!-- NAME:start -->` / `<!-- NAME:end -->` markers), so "
          "rerun the command to refresh it.\n")
ORDER = ["bench_loop", "bench_store", "bench_accuracy", "bench_cli", "bench_tasks", "bench_forecast", "bench_ucr", "bench_doctor",
         "bench_scale", "bench_serve", "gpu_check"]  # where a section goes when RESULTS.md lacks it
MISSED = "\n## Missed targets"  # the hand-written section kept last


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine(torch_threads: int | None = None) -> str:
    """One line: CPU model, cores, OS, Python, torch version (read from the metadata: torch is not imported here)
    and, when given, the torch thread count the figures were measured with."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    parts = [f"{cpu_model()}", f"{usable_cores()} core(s) usable ({os.cpu_count()} logical)",
             f"{platform.system()} {platform.release()}", f"Python {platform.python_version()}",
             f"torch {torch_version}"]
    if torch_threads is not None:
        parts.append(f"torch threads {torch_threads}")
    return ", ".join(parts)


def add_options(ap) -> None:
    """The options every benchmark takes: --no-write, --wait-quiet SECONDS, --check."""
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to this long for other processes to leave the CPUs alone (default: no wait)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed (default: report only, so "
                                                          "`make bench` runs every benchmark)")


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command(default: str) -> str:
    """How this script was run, as a command to paste: `make bench` when make ran it, else the interpreter line."""
    if os.environ.get("MAKELEVEL"):
        return "make bench"
    return default


def rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def python_cmd() -> str:
    """The interpreter as the README writes it (.venv/bin/python) when it is the repository's venv."""
    exe = Path(sys.executable).absolute()
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def median(values) -> float:
    return statistics.median(values)


class Contention:
    """How much CPU other processes (and the hypervisor, as steal) took while a benchmark ran: the figures are
    only as steady as the machine was quiet. Linux only (/proc/stat); elsewhere it says nothing."""

    def __init__(self):
        self.began, self.busy, self.steal, self.own = time.perf_counter(), *self._machine(), self._own()

    @staticmethod
    def _machine():
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None, None
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        hz = os.sysconf("SC_CLK_TCK")
        return (user + nice + system + irq + softirq) / hz, steal / hz

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def report(self) -> str:
        busy, steal = self._machine()
        wall = time.perf_counter() - self.began
        if busy is None or self.busy is None or wall <= 0:
            return ""
        other = max(0.0, (busy - self.busy) - (self._own() - self.own))
        share = other / (wall * usable_cores())
        text = (f"Other processes used {other:.1f} CPU-seconds during the {wall:.0f} s run "
                f"({share:.0%} of the machine), steal {steal - self.steal:.1f} s")
        return text + (": the machine was not quiet; rerun for steadier figures." if share > 0.05 else ".")


def wait_for_quiet(max_seconds: float, threshold: float = 0.05, window: float = 5.0) -> str:
    """Wait (up to max_seconds) until other processes use under `threshold` of the machine over `window` seconds;
    returns a line saying what happened, empty when not asked to wait."""
    if max_seconds <= 0:
        return ""
    began = time.perf_counter()
    while True:
        probe = Contention()
        time.sleep(window)
        busy, _ = probe._machine()
        if busy is None:
            return ""
        share = max(0.0, (busy - probe.busy) - (probe._own() - probe.own)) / (window * usable_cores())
        waited = time.perf_counter() - began
        if share < threshold:
            return f"started after {waited:.0f} s of waiting for a quiet machine"
        if waited >= max_seconds:
            return f"the machine was still {share:.0%} busy after {waited:.0f} s of waiting; started anyway"
        print(f"waiting for a quiet machine: other processes use {share:.0%}", file=sys.stderr, flush=True)


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section between `<!-- name:start -->` and `<!-- name:end -->`, or add it; the rest is kept."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        # insert before the first later section in ORDER, else at the end
        later = [n for n in ORDER[ORDER.index(name) + 1:]] if name in ORDER else []
        at = min((text.find(f"<!-- {n}:start -->") for n in later if f"<!-- {n}:start -->" in text), default=-1)
        if at < 0:  # the hand-written "Missed targets" stays last
            at = text.find(MISSED) + 1 if MISSED in text else -1
        if at >= 0:
            text = text[:at] + block + "\n" + text[at:]
        else:
            text = text.rstrip("\n") + "\n\n" + block
    write_text(path, text)


def write_text(path: Path, text: str) -> None:
    """Write whole then rename into place (readable by all: RESULTS.md and the like are shared)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
