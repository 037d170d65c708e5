"""deepstation doctor: run the registered checks (deepstation.workstation.checks), each under a time limit so that
none can hang the doctor, and collect their rows into one dict; the CLI renders it, `--json` prints it.

A check runs in a worker thread with a deadline: one that overruns is reported as failed ("timed out after N s")
and left behind as a daemon thread. The risky ones (kernels, Ray, GPU work) run in a child process in a session of
its own instead, which is killed, with everything it started, at the limit.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from deepstation.errors import DeepstationError, did_you_mean
from deepstation.workstation import procs
from deepstation.workstation.checks import Check, Context, fail, first_line, load_all, skip


def diagnose(quick: bool = False, only: list[str] | None = None, *, constraints=None, isolate: bool = True,
             progress=None) -> dict:
    """Run the checks (all, or those named in `only`: check or module names) and return
    {"checks": [{"name", "status", "detail", "measured", "fix", "seconds"}, ...], "ok": bool, "seconds": float};
    ok is False when any check failed. quick skips the slow checks and shrinks the GPU benchmark. isolate=False runs
    every check in a thread of this process (tests that mock torch.cuda). progress(name) is called before each."""
    began = time.perf_counter()
    rows: list[dict] = []
    for chosen in select(only):
        if progress:
            progress(chosen.name)
        rows.extend(run_check(chosen, quick, Path(constraints) if constraints else None, isolate))
    return {"checks": rows, "ok": not any(r["status"] == "fail" for r in rows),
            "seconds": round(time.perf_counter() - began, 2)}


def select(only: list[str] | None) -> list[Check]:
    registry = load_all()
    if not only:
        return list(registry.values())
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    modules = {c.module for c in registry.values()}
    known = {*registry, *modules, *(m.replace("_", "-") for m in modules)}
    for name in names:
        if name not in known:
            raise DeepstationError(f"doctor --only: no check named `{name}`.{did_you_mean(name, sorted(known))} "
                                   f"The checks are: {', '.join(registry)}")
    return [c for c in registry.values() if {c.name, c.module, c.module.replace("_", "-")} & set(names)]


def run_check(chosen: Check, quick: bool, constraints: Path | None = None, isolate: bool = True) -> list[dict]:
    limit = chosen.limit(quick)
    began = time.perf_counter()
    if limit is None:
        rows = [skip("skipped by --quick (run `deepstation doctor` for it)")]
    else:
        ctx = Context(quick=quick, constraints=constraints, timeout=limit)
        rows = None
        if chosen.precheck is not None:
            settled = in_thread(lambda: chosen.precheck(ctx), limit, chosen.fix)
            rows = settled if settled != [None] else None
        if rows is None:
            left = max(0.1, limit - (time.perf_counter() - began))  # the precheck counts against the limit
            if chosen.isolate and isolate:
                rows = in_child(chosen.name, ctx, left, chosen.fix, limit)
            else:
                rows = in_thread(lambda: chosen.run(ctx), left, chosen.fix, limit)
    seconds = round(time.perf_counter() - began, 2)
    for row in rows:
        row["name"] = row.get("name") or chosen.name
        row["seconds"] = seconds
    return rows


def in_thread(fn, limit: float, fix: str, said: float | None = None) -> list:
    """fn() in a daemon thread, waited for up to `limit` seconds: its rows, or one failed row (saying the check's
    limit, `said`, when the wait was what was left of it)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 (a check's failure, whatever it is, becomes its row)
            box["error"] = err

    worker = threading.Thread(target=target, daemon=True, name="doctor-check")
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        return [fail(f"timed out after {said or limit:g} s", fix)]
    if "error" in box:
        return [fail(first_line(box["error"]), fix)]
    value = box.get("value")
    return value if isinstance(value, list) else [value]


def in_child(name: str, ctx: Context, limit: float, fix: str, said: float | None = None) -> list[dict]:
    """The check in `python -m deepstation.workstation.checks NAME`, in a session of its own, killed with all it
    started at the limit. Output goes to files, not pipes: a grandchild that keeps a pipe open cannot stall us."""
    cmd = [sys.executable, "-m", "deepstation.workstation.checks", name, "--timeout", f"{limit:g}"]
    cmd += ["--quick"] * ctx.quick + (["--constraints", str(ctx.constraints)] if ctx.constraints else [])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid)
            proc.wait()
            return [fail(f"timed out after {said or limit:g} s", fix)]
        left = kill_session(proc.pid)  # what it started and left running
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    rows = _last_json(stdout)
    if rows is None:
        last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "no output")
        return [fail(f"its process exited with code {proc.returncode}: {last.strip()[:300]}", fix)]
    if left:
        for row in rows:
            row["detail"] += f"; left {left} process(es) running, killed"
            if row["status"] == "ok":
                row.update(status="warn", fix=fix)
    return rows


def _last_json(stdout: str):
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def session_members(sid: int) -> list[int]:
    """Live processes in session `sid`; empty where there is no /proc."""
    return [p.pid for p in procs.live() if p.session == sid]


def kill_session(sid: int) -> int:
    """SIGKILL every process of session `sid` (the child and what it started); returns how many were alive."""
    members = [pid for pid in session_members(sid) if pid != os.getpid()]
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if not members and not Path("/proc").is_dir():
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(members)

