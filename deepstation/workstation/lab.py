"""deepstation lab: JupyterLab on 127.0.0.1 with a fresh token, the deepstation kernel and the seed notebooks.

JupyterLab runs as a child process in its own process group. The token reaches it through the environment
(JUPYTER_TOKEN), not the command line, so other users of the machine cannot read it from the process list;
the server is only called ready once it answers /api/status with the token and refuses it without, so a
Jupyter config that switches authentication off is caught before a URL is printed. Stopping sends SIGTERM
to the server (Jupyter then shuts its kernels down), waits, and kills whatever is left of its group.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError
from deepstation.workstation.kernel import INSTALL

HOST = "127.0.0.1"  # never another interface: reach it from elsewhere through an SSH tunnel
START_TIMEOUT = 90.0  # seconds for the server to answer; a cold start on a slow disk takes a while
STOP_TIMEOUT = 10.0  # seconds Jupyter gets to shut its kernels down before the group is killed


class _Stop(Exception):
    """SIGTERM or SIGINT arrived: stop the lab."""


# -- the notebooks ---------------------------------------------------------------------------------------

def shipped_notebooks() -> dict[str, bytes]:
    """{file name: content} of the notebooks inside the package."""
    from importlib.resources import files

    folder = files("deepstation") / "notebooks"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".ipynb")}


def copy_notebooks(folder) -> list[str]:
    """Copy the shipped notebooks that `folder` lacks; a copy already there (perhaps edited) is kept.
    Returns the names copied."""
    folder = Path(folder)
    copied = []
    for name, content in shipped_notebooks().items():
        target = folder / name
        if target.exists():
            continue
        try:
            files.write_bytes(target, content, sync=False)  # whole or not at all
        except OSError as err:
            raise DeepstationError(f"{folder}: cannot copy the notebooks into it ({err.strerror or err}); pass a "
                                   f"folder you can write to with --dir") from err
        copied.append(name)
    return copied


def notebooks_dir(path=None) -> Path:
    """The folder the lab opens: `path` (which must be a folder), or ./notebooks, made when missing."""
    if path is None:
        folder = Path.cwd() / "notebooks"
        if folder.exists() and not folder.is_dir():
            raise DeepstationError(f"{folder} is a file, not a folder; move it away or pass --dir DIR")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as err:
            raise DeepstationError(f"cannot make {folder} ({err.strerror or err}); pass a folder you can write to "
                                   f"with --dir") from err
        return folder
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise DeepstationError(f"--dir {path}: {what}; pass an existing folder, or leave --dir out to use "
                               f"./notebooks")
    return folder.resolve()


# -- ports -----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise DeepstationError(f"--port {port}: expected a port number from 1 to 65535")
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as err:
            raise DeepstationError(f"--port {port}: {HOST}:{port} is not free ({err.strerror}); pick another port "
                                   f"or leave --port out to take a free one") from err
    return port


# -- the server ------------------------------------------------------------------------------------------

class Lab:
    """A JupyterLab child process behind a fresh token: `start` waits until it answers, `stop` ends it and its
    process group (`serve` always calls it)."""

    LOG_LEVEL = "ERROR"  # the user sees our lines, not the 403s of the token check

    def __init__(self, folder, port: int):
        import secrets

        self.folder, self.port = Path(folder), port
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/lab?token={self.token}"

    def command(self) -> list[str]:
        from deepstation.workstation.kernel import KERNEL_NAME

        command = [sys.executable, "-m", "jupyterlab", "--no-browser",
                   f"--ServerApp.ip={HOST}", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--ServerApp.root_dir={self.folder}", f"--ServerApp.log_level={self.LOG_LEVEL}",
                   f"--LabApp.log_level={self.LOG_LEVEL}",
                   f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Jupyter refuses root by default; containers and fresh cloud machines often are root, and the
            # server stays on 127.0.0.1 behind the token either way
            command.append("--ServerApp.allow_root=True")
        return command

    def start(self, timeout: float = START_TIMEOUT) -> "Lab":
        env = {**os.environ, "JUPYTER_TOKEN": self.token}
        env.pop("JUPYTER_TOKEN_FILE", None)
        # its own session and process group: a Ctrl-C in the terminal reaches us, and we stop the whole group
        self.proc = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(timeout)  # on failure the caller's stop() ends the process
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Poll /api/status until it answers 200 with the token (and 403 without), the process exits, or
        `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(self.token)
            if status == 200:
                if self.status(None) != 403:
                    raise DeepstationError(f"JupyterLab on {self.base} answers without the token; a Jupyter "
                                           f"config turns authentication off (IdentityProvider.token or "
                                           f"ServerApp.token set to ''); remove that setting and start again")
                return
            if status == 403:
                raise DeepstationError(f"JupyterLab on {self.base} refuses the token deepstation gave it; a "
                                       f"Jupyter config sets its own (IdentityProvider.token or ServerApp.token); "
                                       f"remove that setting and start again")
            try:  # waiting on the process doubles as the pause between polls, and sees it exit at once
                code = self.proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                raise DeepstationError(f"JupyterLab exited with code {code} before it answered on {self.base}; "
                                       f"its messages are above")
            if time.monotonic() > deadline:
                raise DeepstationError(f"JupyterLab did not answer on {self.base} within {timeout:.0f} s; "
                                       f"its messages are above")

    def status(self, token: str | None) -> int | None:
        """The HTTP status of GET /api/status (with `token`, or none), or None when nothing answers."""
        import urllib.error
        import urllib.request

        headers = {"Authorization": f"token {token}"} if token else {}
        request = urllib.request.Request(f"{self.base}/api/status", headers=headers)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy: the token
        try:
            with direct.open(request, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except (OSError, ValueError):  # refused, reset, timed out: not up yet
            return None

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM to the server (Jupyter shuts its kernels down and exits), then SIGKILL to what is left of its
        group (helpers it ran, such as npm or a language-server probe)."""
        if self.proc is None:
            return None
        group = self.proc.pid  # start_new_session: the group id is the child's pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(group, signal.SIGKILL)
                self.proc.wait()
        _signal_group(group, signal.SIGKILL)  # anything it left behind in its group
        return self.proc.returncode


def _signal_group(group: int, sig) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone


def serve(port: int | None = None, folder=None, open_browser: bool = True, announce=print) -> int:
    """Run the lab until SIGTERM, SIGINT (Ctrl-C) or a shutdown from the browser. `announce(text)` receives
    what the user should read: the folder, the URL (alone on its line) and how to stop. Returns 0 when
    stopped by a signal, else the server's exit code."""
    import importlib.util

    from deepstation.workstation.kernel import ensure_kernel

    if importlib.util.find_spec("jupyterlab") is None:
        raise DeepstationError(f"deepstation lab needs JupyterLab, which is not installed in {sys.prefix}; "
                               f"install it with `{INSTALL}`")
    port = check_port(port) if port is not None else free_port()
    folder = notebooks_dir(folder)
    kernel = ensure_kernel()
    copied = copy_notebooks(folder)

    def stop(signum, frame):
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    lab = Lab(folder, port)
    try:
        lab.start()
        announce(f"notebooks: {folder}" + (f" (copied {', '.join(copied)})" if copied else "")
                 + f"; kernel: {kernel}")
        announce(lab.url)
        announce("Ctrl-C stops the lab and its kernels")
        if open_browser and _has_display():
            import webbrowser

            webbrowser.open(lab.url)
        return lab.wait()
    except _Stop:
        return 0
    finally:
        for sig in previous:  # no second signal may interrupt the stopping
            signal.signal(sig, signal.SIG_IGN)
        try:
            lab.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _has_display() -> bool:
    """False on a Linux machine without a desktop (over SSH), where a browser would be a text one taking over
    the terminal; the URL is printed either way."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
