"""Jupyter: the deepstation Python kernel starts and runs a cell (and imports torch); the R kernel ("ir") too, when R
and IRkernel are installed. Each kernel runs in a child process of the doctor's, which is killed at the limit."""
from __future__ import annotations

import shutil
import sys
import time

from deepstation.workstation.checks import Context, check, fail, ok, skip, warn

PY_FIX = ("install the lab extra (`make setup`, or pip install 'deepstation[lab]'); `deepstation lab` registers the "
          "kernel")
R_FIX = "`make setup-r` installs R and IRkernel and registers the `ir` kernel in this environment"
PYTHON_CELL = "import sys, torch\nprint(sys.executable)\nprint(torch.__version__)\n1 + 1"


def python_kernel_name() -> str:
    """The kernelspec named "deepstation" when registered, else "python3" (ipykernel in this environment)."""
    from jupyter_client.kernelspec import KernelSpecManager

    from deepstation.workstation.kernel import KERNEL_NAME

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def _needs_jupyter(ctx: Context) -> dict | None:
    try:
        import jupyter_client  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError as err:
        return fail(f"Jupyter is not installed ({err.name} missing)", PY_FIX)
    return None


@check("jupyter-python", timeout=60, quick=None, fix=PY_FIX, isolate=True, precheck=_needs_jupyter)
def python_kernel(ctx: Context) -> dict:
    name = python_kernel_name()
    reply = run_cell(name, PYTHON_CELL, ctx.timeout - 5)
    measured = {"kernel": name, **{k: v for k, v in reply.items() if k != "stdout"}}
    if reply.get("error"):
        return fail(f"kernel `{name}`: {reply['error']}", PY_FIX, measured)
    lines = reply["stdout"].split()
    measured["python"], measured["torch"] = (lines + [None, None])[:2]
    if reply["result"] != "2":
        return fail(f"kernel `{name}` answered {reply['result']!r} to 1 + 1", PY_FIX, measured)
    detail = (f"kernel `{name}` started in {reply['start_s']:.1f} s, ran a cell with torch {measured['torch']} "
              f"in {reply['cell_s']:.1f} s")
    if measured["python"] and measured["python"] != sys.executable:
        return warn(f"{detail}, but runs {measured['python']}, not {sys.executable}", measured,
                    "register this environment's kernel: python -m ipykernel install --sys-prefix --name deepstation")
    return ok(detail, measured)


def _needs_r(ctx: Context) -> dict | None:
    if shutil.which("R") is None:
        return skip("R is not installed", fix=R_FIX)
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as err:
        return fail(f"Jupyter is not installed ({err.name} missing)", PY_FIX)
    if "ir" not in KernelSpecManager().find_kernel_specs():
        return skip("R is installed but IRkernel's `ir` kernel is not registered", fix=R_FIX)
    return None


@check("jupyter-r", timeout=60, quick=None, fix=R_FIX, isolate=True, precheck=_needs_r)
def r_kernel(ctx: Context) -> dict:
    settled = _needs_r(ctx)
    if settled is not None:
        return settled
    reply = run_cell("ir", "1 + 1", ctx.timeout - 5)
    measured = {"kernel": "ir", **{k: v for k, v in reply.items() if k != "stdout"}}
    if reply.get("error"):
        return fail(f"kernel `ir`: {reply['error']}", R_FIX, measured)
    if reply["result"] != "[1] 2":
        return fail(f"kernel `ir` answered {reply['result']!r} to 1 + 1", R_FIX, measured)
    return ok(f"kernel `ir` started in {reply['start_s']:.1f} s, ran a cell in {reply['cell_s']:.1f} s", measured)


def run_cell(kernel: str, code: str, timeout: float) -> dict:
    """Start `kernel`, run `code`, shut the kernel down: {"start_s", "cell_s", "result", "stdout", "error"}."""
    from jupyter_client.manager import KernelManager

    timeout = max(5.0, timeout)
    deadline = time.monotonic() + timeout
    km = KernelManager(kernel_name=kernel)
    began = time.perf_counter()
    reply = {"start_s": None, "cell_s": None, "result": None, "stdout": "", "error": None}
    client = None
    try:
        km.start_kernel()
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
        reply["start_s"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        msg_id = client.execute(code, store_history=False)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to a cell within {timeout:g} s")
            msg = client.get_iopub_msg(timeout=left)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                reply["stdout"] += content.get("text", "")
            elif kind in ("execute_result", "display_data"):  # IRkernel shows a value as display_data
                reply["result"] = content["data"].get("text/plain")
            elif kind == "error":
                reply["error"] = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        reply["cell_s"] = round(time.perf_counter() - began, 2)
    except Exception as err:  # noqa: BLE001 (a kernel that does not start or answer is this check's failure)
        reply["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    finally:
        if client is not None:
            client.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return reply
