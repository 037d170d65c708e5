"""The doctor's checks, a small registry: each module here (one per tool) registers its checks with `@check`, and
deepstation.workstation.doctor runs them. A check takes a Context and returns one result, or a list of results when
it reports one row per thing (one per GPU); results are plain dicts made by ok(), warn(), fail() and skip()."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# the modules, in the order their rows are shown
MODULES = ["python", "torch_cpu", "gpu", "jupyter", "sql", "ray", "system"]
STATUSES = ("ok", "warn", "fail", "skip")


@dataclass(frozen=True)
class Context:
    quick: bool = False
    constraints: Path | None = None  # --constraints FILE; None: look next to the source tree
    timeout: float = 60.0            # this check's limit, for the waits inside it


@dataclass(frozen=True)
class Check:
    name: str
    module: str
    run: Callable[[Context], "dict | list[dict]"]
    timeout: float                   # seconds, full doctor
    quick_timeout: float | None      # seconds under --quick; None: --quick skips the check
    fix: str                         # what to do when it fails or overruns for an unforeseen reason
    isolate: bool = False            # run in a child process that is killed at the limit (kernels, Ray, GPU work)
    precheck: Callable[[Context], "dict | None"] | None = None  # cheap, in-process; a result here settles it

    def limit(self, quick: bool) -> float | None:
        return self.quick_timeout if quick else self.timeout


REGISTRY: dict[str, Check] = {}


def check(name: str, timeout: float, quick: float | None, fix: str, isolate: bool = False, precheck=None):
    """Register the decorated function as the check `name`."""
    def register(fn):
        module = fn.__module__.rsplit(".", 1)[-1]
        REGISTRY[name] = Check(name, module, fn, timeout, quick, fix, isolate, precheck)
        return fn
    return register


def load_all() -> dict[str, Check]:
    """Every check, in the order of MODULES (then registration order within a module; others last)."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    rank = {m: i for i, m in enumerate(MODULES)}
    ordered = sorted(REGISTRY.values(), key=lambda c: rank.get(c.module, len(MODULES)))  # stable: keeps module order
    return {c.name: c for c in ordered}


def result(status: str, detail: str, measured: dict | None = None, fix: str | None = None, name: str | None = None):
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")
    return {"name": name, "status": status, "detail": detail, "measured": measured or {}, "fix": fix}


def ok(detail: str, measured: dict | None = None, name: str | None = None) -> dict:
    return result("ok", detail, measured, name=name)


def warn(detail: str, measured: dict | None = None, fix: str | None = None, name: str | None = None) -> dict:
    return result("warn", detail, measured, fix, name=name)


def fail(detail: str, fix: str, measured: dict | None = None, name: str | None = None) -> dict:
    return result("fail", detail, measured, fix, name=name)


def skip(reason: str, measured: dict | None = None, fix: str | None = None, name: str | None = None) -> dict:
    return result("skip", reason, measured, fix, name=name)


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
