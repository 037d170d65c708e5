"""deepstation ui [--port N]"""
from __future__ import annotations

from deepstation.cli import verb_parser

START_TIMEOUT_S = 90.0


def add_parser(sub, common):
    p = verb_parser(sub, common, "ui",
                    "Start the MLflow UI on 127.0.0.1 against the tracking store in use; Ctrl-C stops it.",
                    "deepstation ui --port 5001")
    p.add_argument("--port", type=int, default=5000, metavar="N", help="port on 127.0.0.1 (default 5000)")
    p.add_argument("--check", action="store_true", help="start it, wait until it answers, print the URL and stop "
                   "(for scripts)")
    p.set_defaults(run=run)


def run(args) -> int:
    import signal
    import sys

    from deepstation.errors import DeepstationError
    from deepstation.track.runs import current_store

    if not 1 <= args.port <= 65535:
        raise DeepstationError(f"--port {args.port}: expected a port number from 1 to 65535, such as --port 5001")
    store = current_store()  # reachable, and its tables made, before the server starts
    server = Server(store.uri, args.port)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        url = server.start()
        print(f"MLflow UI for {store.shown}: {url}  (Ctrl-C stops it)", file=sys.stderr)
        print(url)
        sys.stdout.flush()
        if not args.check:
            code = server.process.wait()
            if code:
                raise DeepstationError(f"the MLflow server stopped with exit code {code}: {server.last_lines()}")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Server:
    """`mlflow server` in its own process group, on 127.0.0.1, polled on /health until it answers."""

    def __init__(self, uri: str, port: int):
        self.uri, self.port = uri, port
        self.process = None
        self.log = None

    def command(self) -> list[str]:
        import sys

        from deepstation.track.store import artifact_root

        return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.uri, "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1", "--no-serve-artifacts",
                "--default-artifact-root", artifact_root(self.uri, "").rstrip("/")]

    def start(self) -> str:
        import os
        import socket
        import subprocess
        import tempfile
        import time

        from deepstation.errors import DeepstationError

        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise DeepstationError(f"--port {self.port}: something already listens on 127.0.0.1:{self.port}; "
                                       f"pass another port, such as --port {self.port + 1}")
        self.log = tempfile.NamedTemporaryFile(prefix="deepstation-ui-", suffix=".log", delete=False)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # else it leaves job workers behind
        self.process = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if self.process.poll() is not None:
                raise DeepstationError(f"the MLflow server exited at start (code {self.process.returncode}): "
                                       f"{self.last_lines()}")
            if time.monotonic() > deadline:
                raise DeepstationError(f"the MLflow server did not answer on {url} within {START_TIMEOUT_S:.0f} s: "
                                       f"{self.last_lines()}")
            time.sleep(0.2)  # a poll interval, not a guess at the start-up time
        return url

    def stop(self) -> None:
        """End the server's whole process group: SIGTERM, then SIGKILL after 10 s."""
        import os
        import signal
        import subprocess

        if self.process is not None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=wait)
                    _wait_group_gone(self.process.pid, wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.log is not None:
            self.log.close()
            os.unlink(self.log.name)
            self.log = None

    def last_lines(self, n: int = 3) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
        return " | ".join(lines[-n:]) or "(no output)"


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def _wait_group_gone(pgid: int, seconds: float) -> None:
    """The group's other processes (uvicorn workers) gone too; SIGKILL them if they outlive the leader."""
    import os
    import signal
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.05)
