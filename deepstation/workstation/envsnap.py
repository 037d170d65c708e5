"""The same setup for the whole team: a snapshot of this machine's environment (Python, every installed package, the
torch build, CUDA, the NVIDIA driver, the GPUs, the OS) to share as a JSON file, and a comparison of this machine
with one. A package of the snapshot that is missing here or has another version is a difference that fails the
check; everything else (extra packages here, another OS, other GPUs or driver) is a note."""
from __future__ import annotations

import platform
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError

KIND = "deepstation-env-snapshot"
FORMAT = 1


def snapshot() -> dict:
    """This machine's environment as a JSON-ready dict."""
    smi = nvidia_smi()  # one subprocess for the driver and the GPUs
    return {
        "kind": KIND,
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": packages(),
        "torch": torch_build(),
        "nvidia_driver": smi.get("driver"),
        "gpus": gpus(smi),
        "os": os_info(),
    }


def save(path) -> dict:
    snap = snapshot()
    files.write_json(path, snap)
    return snap


def packages() -> dict[str, str]:
    """Every installed distribution: normalised name -> version, sorted by name. Where a name is installed twice,
    the first on sys.path (the one `import` finds) wins."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        meta = dist.metadata
        name = meta["Name"]
        if name:
            found.setdefault(normalise(name), meta["Version"])
    return dict(sorted(found.items()))


def normalise(name: str) -> str:
    """PEP 503: one spelling per package (SQLAlchemy and sqlalchemy, jupyter_client and jupyter-client)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def torch_build() -> dict | None:
    """torch's version and what it was built for; None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    hip = getattr(torch.version, "hip", None)
    build = f"cuda {torch.version.cuda}" if torch.version.cuda else (f"rocm {hip}" if hip else "cpu")
    return {"version": torch.__version__, "build": build, "cuda": torch.version.cuda, "cudnn": cudnn}


def nvidia_smi() -> dict:
    """{"driver": ..., "gpus": [...]} from nvidia-smi, or {} where it is absent or fails (no CUDA init here)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    rows = [[f.strip() for f in line.split(",")] for line in out.stdout.strip().splitlines() if line.count(",") >= 2]
    if not rows:
        return {}
    return {"driver": rows[0][2],
            "gpus": [{"name": r[0], "memory_gib": round(float(r[1]) / 1024, 1) if _number(r[1]) else None}
                     for r in rows]}


def gpus(smi: dict | None = None) -> list[dict]:
    """The GPUs by nvidia-smi (its answer `smi` when already asked), else by torch (which initialises CUDA), else
    none."""
    found = (nvidia_smi() if smi is None else smi).get("gpus")
    if found is not None:
        return found
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [{"name": torch.cuda.get_device_name(i),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())]


def os_info() -> dict:
    info = {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
            "platform": platform.platform()}
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {}
    info["os_release"] = {k: release[k] for k in ("NAME", "VERSION_ID", "PRETTY_NAME") if k in release}
    return info


def load(path) -> dict:
    """A snapshot file, or a one-line DeepstationError saying why it is not one."""
    path = Path(path)
    hint = "pass a file made by `deepstation env snapshot -o FILE`"
    try:
        snap = files.read_json(path)
    except FileNotFoundError:
        raise DeepstationError(f"env check: {path}: no such file; {hint}") from None
    except (OSError, ValueError) as err:
        raise DeepstationError(f"env check: {path}: not an environment snapshot (not JSON: {err}); {hint}") from None
    if not (isinstance(snap, dict) and isinstance(snap.get("packages"), dict) and isinstance(snap.get("python"), dict)
            and snap.get("kind", KIND) == KIND and isinstance(snap.get("torch") or {}, dict)
            and isinstance(snap.get("os") or {}, dict) and isinstance(snap.get("gpus") or [], list)):
        raise DeepstationError(f"env check: {path}: not an environment snapshot (expected an object with `python` "
                               f"and `packages`); {hint}")
    return snap


def compare(theirs: dict, ours: dict | None = None) -> dict:
    """The differences between a snapshot (`theirs`) and this machine:
    {"differences": [{"what", "name", "snapshot", "here", "fails"}], "ok": bool, "failing": int}."""
    ours = ours or snapshot()
    found = []

    def add(what, name, snap_value, here, fails=False):
        found.append({"what": what, "name": name, "snapshot": snap_value, "here": here, "fails": fails})

    want, have = {normalise(k): str(v) for k, v in theirs["packages"].items()}, ours["packages"]
    for name, version in want.items():
        if name not in have:
            add("package missing", name, version, None, fails=True)
        elif have[name] != version:
            add("package version", name, version, have[name], fails=True)
    for name in sorted(set(have) - set(want)):
        add("package extra", name, None, have[name])

    snap_py, our_py = theirs.get("python", {}), ours["python"]
    for key in ("implementation", "version"):
        if snap_py.get(key) != our_py.get(key):
            add("python", key, snap_py.get(key), our_py.get(key))
    snap_torch, our_torch = theirs.get("torch") or {}, ours.get("torch") or {}
    for key, what in (("build", "torch build"), ("cuda", "cuda"), ("cudnn", "cudnn")):
        if snap_torch.get(key) != our_torch.get(key):
            add(what, key, snap_torch.get(key), our_torch.get(key))
    if theirs.get("nvidia_driver") != ours.get("nvidia_driver"):
        add("driver", "nvidia", theirs.get("nvidia_driver"), ours.get("nvidia_driver"))
    snap_gpus, our_gpus = _gpu_names(theirs.get("gpus")), _gpu_names(ours.get("gpus"))
    if snap_gpus != our_gpus:
        add("gpus", "names", snap_gpus or None, our_gpus or None)
    snap_os, our_os = theirs.get("os") or {}, ours.get("os") or {}
    for key in ("system", "machine"):
        if snap_os.get(key) != our_os.get(key):
            add("os", key, snap_os.get(key), our_os.get(key))
    snap_rel = (snap_os.get("os_release") or {}).get("PRETTY_NAME")
    our_rel = (our_os.get("os_release") or {}).get("PRETTY_NAME")
    if snap_rel != our_rel:
        add("os", "release", snap_rel, our_rel)
    failing = sum(d["fails"] for d in found)
    return {"differences": found, "ok": failing == 0, "failing": failing,
            "packages": {"snapshot": len(want), "here": len(have)}}


def _gpu_names(gpus) -> list[str]:
    return [g.get("name") for g in gpus or [] if isinstance(g, dict)]


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
