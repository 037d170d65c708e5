"""Live processes from /proc (Linux): what the doctor's checks started and must leave no trace of."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    ppid: int
    session: int


def read(pid: int) -> Proc | None:
    """One process, or None when it is gone or has exited and waits to be reaped."""
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return None
    head, rest = stat.rsplit(")", 1)  # "pid (comm) state ppid pgrp session ...": comm may hold spaces
    fields = rest.split()
    if fields[0] in ("Z", "X"):
        return None
    return Proc(pid, head.split("(", 1)[1], int(fields[1]), int(fields[3]))


def live() -> list[Proc]:
    """Every live process; empty where there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    return [p for p in (read(int(e)) for e in entries if e.isdigit()) if p is not None]
