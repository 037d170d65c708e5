"""Python, deepstation, and the installed stack against the repository's pinned constraints.txt."""
from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from deepstation.workstation.checks import Context, check, fail, ok, skip, warn
from deepstation.workstation.envsnap import normalise, packages

MIN_PYTHON = (3, 10)
SHOWN = 5  # differences named in the detail line; all of them are in measured


@check("python", timeout=10, quick=10, fix="install Python >= 3.10 and run `make setup`")
def python(ctx: Context) -> dict:
    measured = {"python": platform.python_version(), "implementation": platform.python_implementation(),
                "executable": sys.executable, "deepstation": _version("deepstation")}
    detail = (f"{measured['implementation']} {measured['python']}, deepstation {measured['deepstation']}, "
              f"{sys.executable}")
    if sys.version_info[:2] < MIN_PYTHON:
        return fail(detail, f"deepstation needs Python >= {'.'.join(map(str, MIN_PYTHON))}; make a new "
                            f"environment with a newer Python (make setup PYTHON=python3.11)", measured)
    return ok(detail, measured)


@check("stack", timeout=15, quick=15, fix="reinstall the pinned stack: `make setup` (pip install -c constraints.txt)")
def stack(ctx: Context) -> dict:
    path = ctx.constraints or find_constraints()
    if path is None:
        return skip("no constraints.txt next to the source tree (an installed package); pass --constraints FILE")
    path = Path(path)
    if not path.is_file():
        return fail(f"--constraints {path}: no such file", "pass the repository's constraints.txt")
    pins = read_pins(path)
    have = packages()
    differ, missing = {}, []
    for name, pinned in pins.items():
        installed = have.get(name)
        if installed is None:
            missing.append(name)
        elif public(installed) != public(pinned):
            differ[name] = {"installed": installed, "pinned": pinned}
    measured = {"constraints": str(path), "pinned": len(pins), "matching": len(pins) - len(differ) - len(missing),
                "differ": differ, "missing": missing}
    if not differ and not missing:
        return ok(f"{len(pins)} pinned packages match {path.name}", measured)
    parts = [f"{n} {d['installed']} (pinned {d['pinned']})" for n, d in list(differ.items())[:SHOWN]]
    parts += [f"{n} missing" for n in missing[:max(0, SHOWN - len(parts))]]
    more = len(differ) + len(missing) - len(parts)
    return warn(f"{len(differ)} differ, {len(missing)} missing of {len(pins)} pinned: {', '.join(parts)}"
                + (f" and {more} more" if more > 0 else ""), measured,
                fix=f"pip install -c {path} -e '.[dev]' (or `make setup`) to return to the tested stack")


def find_constraints() -> Path | None:
    """constraints.txt beside the source tree (a checkout or an editable install), else None."""
    import deepstation

    candidate = Path(deepstation.__file__).resolve().parent.parent / "constraints.txt"
    return candidate if candidate.is_file() else None


def read_pins(path: Path) -> dict[str, str]:
    """name -> version for each `name==version` line (extras and environment markers dropped)."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s,]+)", line)
        if m:
            pins[normalise(m.group(1))] = m.group(3)
    return pins


def public(version: str) -> str:
    """The version without its local label: torch 2.13.0+cpu is the pinned 2.13.0, built for the CPU."""
    return version.split("+", 1)[0]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
