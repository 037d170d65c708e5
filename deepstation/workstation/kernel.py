"""The "deepstation" Jupyter kernel: this environment's Python, registered inside this environment.

The kernelspec goes to `<sys.prefix>/share/jupyter/kernels/deepstation/`, a folder Jupyter searches when it
runs from the same environment, so the kernel belongs to the environment (another virtualenv does not see
it, and removing the environment removes it). Registering is idempotent: an up-to-date spec is left alone.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError

KERNEL_NAME = "deepstation"
DISPLAY_NAME = "Python (deepstation)"
INSTALL = "pip install 'deepstation[lab]'"


def kernel_spec() -> dict:
    return {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def kernel_dir(prefix=None) -> Path:
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def ensure_kernel(prefix=None) -> str:
    """Register the kernel (once) and return its name. `prefix` defaults to this environment's sys.prefix."""
    import importlib.util

    if importlib.util.find_spec("ipykernel") is None:
        raise DeepstationError(f"the deepstation Jupyter kernel needs ipykernel, which is not installed in "
                               f"{sys.prefix}; install it with `{INSTALL}`")
    folder = kernel_dir(prefix)
    spec = kernel_spec()
    path = folder / "kernel.json"
    try:
        if path.is_file() and json.loads(path.read_text()) == spec:
            return KERNEL_NAME
    except (OSError, ValueError):
        pass  # unreadable or not JSON: write it again
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _copy_logos(folder)
        files.write_text(path, json.dumps(spec, indent=1) + "\n")  # whole or not at all: Jupyter never reads half
    except OSError as err:
        raise DeepstationError(f"could not register the Jupyter kernel in {folder}: {err.strerror or err}; "
                               f"use an environment you can write to (python -m venv .venv)") from err
    return KERNEL_NAME


def _copy_logos(folder: Path) -> None:
    """ipykernel's logos, so the launcher shows a Python icon; missing logos are no error."""
    import importlib.util
    import shutil

    found = importlib.util.find_spec("ipykernel")
    resources = Path(found.origin).parent / "resources" if found and found.origin else None
    for name in ("logo-32x32.png", "logo-64x64.png"):
        if resources is not None and (resources / name).is_file() and not (folder / name).exists():
            shutil.copyfile(resources / name, folder / name)
