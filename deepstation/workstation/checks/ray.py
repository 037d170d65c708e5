"""Ray, when installed: a local cluster starts in a fresh temp dir, runs a remote task, shuts down, and leaves no
process and no file behind (nothing under /tmp/ray or ~/.ray)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from deepstation.workstation import procs
from deepstation.workstation.checks import Context, check, fail, ok, skip

FIX = "reinstall Ray (`make setup`, or pip install 'deepstation[cluster]'); run with RAY_LOG_TO_STDERR=1 to see why"
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _needs_ray(ctx: Context) -> dict | None:
    if importlib.util.find_spec("ray") is None:
        return skip("Ray is not installed (only --workers N needs it)", fix="pip install 'deepstation[cluster]'")
    return None


@check("ray", timeout=90, quick=None, fix=FIX, isolate=True, precheck=_needs_ray)
def ray_check(ctx: Context) -> dict:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    # short: Ray's unix sockets live under it, and a socket path may not exceed 107 characters
    temp = tempfile.mkdtemp(prefix="ds-ray-")
    try:
        return _run(temp, ctx)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _run(temp: str, ctx: Context) -> dict:
    import ray

    began = time.perf_counter()
    before = set(descendants())
    ray.init(address="local", num_cpus=1, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
             configure_logging=False)
    measured = {"ray": ray.__version__, "temp_dir": temp}
    try:
        measured["start_s"] = round(time.perf_counter() - began, 2)
        started = set(descendants()) - before

        @ray.remote(num_cpus=1)
        def square(x):
            return x * x

        began = time.perf_counter()
        answer = ray.get(square.remote(12), timeout=max(5.0, ctx.timeout / 2))
        measured["task_s"] = round(time.perf_counter() - began, 2)
        started |= set(descendants()) - before  # the worker the task started
    finally:
        began = time.perf_counter()
        ray.shutdown()
    measured["shutdown_s"] = round(time.perf_counter() - began, 2)
    left = wait_gone(started, timeout=15)
    shutil.rmtree(temp, ignore_errors=True)
    measured["left_processes"] = [name for _, name in left]
    measured["temp_dir_removed"] = not Path(temp).exists()
    if answer != 144:
        return fail(f"a remote task returned {answer!r} instead of 144", FIX, measured)
    if left:
        for pid, _ in left:
            _kill(pid)
        return fail(f"Ray left {len(left)} process(es) running after shutdown: "
                    f"{', '.join(sorted({n for _, n in left}))} (killed)", FIX, measured)
    if not measured["temp_dir_removed"]:
        return fail(f"the temp dir {temp} could not be removed", FIX, measured)
    return ok(f"Ray {ray.__version__}: local cluster started in {measured['start_s']:.1f} s, ran a task, shut down "
              f"in {measured['shutdown_s']:.1f} s; no process or file left", measured)


def descendants(pid: int | None = None) -> dict[int, str]:
    """pid -> name of every live process below `pid` (default: this one)."""
    table = procs.live()
    children: dict[int, list[procs.Proc]] = {}
    for p in table:
        children.setdefault(p.ppid, []).append(p)
    found, todo = {}, [pid or os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child.pid] = child.name
            todo.append(child.pid)
    return found


def wait_gone(pids, timeout: float) -> list[tuple[int, str]]:
    """Wait up to `timeout` s for the processes to end; those still alive as (pid, name)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [(pid, name) for pid, name in _alive(pids)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _alive(pids):
    for pid in pids:
        p = procs.read(pid)
        if p is not None:
            yield pid, p.name


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
