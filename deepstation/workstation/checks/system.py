"""Room to work: free disk in the working folder and the runs folder, and the machine's memory."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from deepstation import files
from deepstation.workstation.checks import Context, check, fail, ok, warn

MIN_DISK_GIB = 5.0     # below: a warning (checkpoints and tracking artifacts need room)
MIN_MEMORY_GIB = 2.0   # available memory below: a warning


@check("disk", timeout=10, quick=10, fix="free some space, or point DEEPSTATION_RUNS_DIR at a larger disk")
def disk(ctx: Context) -> dict:
    places = {"working folder": Path.cwd(), "runs folder": files.runs_dir().absolute()}
    measured, low = {}, []
    for label, path in places.items():
        existing = _nearest_existing(path)
        usage = shutil.disk_usage(existing)
        free = usage.free / 2**30
        measured[label.split()[0]] = {"path": str(path), "free_gib": round(free, 1),
                                      "total_gib": round(usage.total / 2**30, 1)}
        if free < MIN_DISK_GIB:
            low.append(f"{label} {path}: {free:.1f} GiB free")
    detail = "; ".join(f"{label} {measured[label.split()[0]]['free_gib']:g} GiB free of "
                       f"{measured[label.split()[0]]['total_gib']:g}" for label in places)
    if low:
        return warn(f"under {MIN_DISK_GIB:g} GiB free: {'; '.join(low)}", measured,
                    "free some space, or point DEEPSTATION_RUNS_DIR at a larger disk")
    return ok(detail, measured)


@check("memory", timeout=10, quick=10, fix="close other programs, or use a machine with more memory")
def memory(ctx: Context) -> dict:
    total, available = read_memory()
    if total is None:
        return fail("could not read the memory size (no /proc/meminfo or sysconf)", "report this as a bug")
    measured = {"total_gib": round(total / 2**30, 1),
                "available_gib": round(available / 2**30, 1) if available is not None else None,
                "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    detail = (f"{measured['total_gib']:g} GiB, {measured['available_gib']} GiB available; "
              f"{measured['cpus']} CPU core(s) usable")
    if available is not None and available / 2**30 < MIN_MEMORY_GIB:
        return warn(detail, measured, "close other programs, or lower trainer.batch_size")
    return ok(detail, measured)


def read_memory() -> tuple[int | None, int | None]:
    """(total, available) bytes, from /proc/meminfo, else os.sysconf (total only)."""
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0]) * 1024  # kB
        return fields.get("MemTotal"), fields.get("MemAvailable")
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
    except (ValueError, OSError, AttributeError):
        return None, None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
