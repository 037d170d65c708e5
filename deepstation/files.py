"""Atomic file writes (a reader sees the old file or the new one, never half of one), and where run folders go."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path, data: bytes, sync: bool = True) -> None:
    """sync=False skips fsync: still whole after a process is killed, not after a power cut; much cheaper."""
    path = Path(path)
    # the writer's pid in the name: a reader can tell a write in progress from one a kill left behind (stale_temp)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TEMP_SUFFIX = ".tmp"


def stale_temp(folder) -> list[Path]:
    """The temporary files in `folder` that a killed writer left: its process is gone, or (a name without a pid)
    the file is over a minute old."""
    import time

    found = []
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        parts = path.name.split(".")  # "", name..., pid, random, "tmp"
        pid = parts[-3] if len(parts) >= 5 and parts[-3].isdigit() else None
        try:
            gone = not alive(int(pid)) if pid else time.time() - path.stat().st_mtime > 60
        except OSError:
            continue  # renamed into place meanwhile
        if gone:
            found.append(path)
    return found


def alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_plain) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def _plain(value):
    """numpy scalars and paths in JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


RUNS_DIR_ENV = "DEEPSTATION_RUNS_DIR"


def runs_dir(given=None) -> Path:
    """Where run folders go: `given` (--runs-dir), else $DEEPSTATION_RUNS_DIR, else ./runs."""
    return Path(given or os.environ.get(RUNS_DIR_ENV) or "runs")
