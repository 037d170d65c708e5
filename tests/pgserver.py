"""A real PostgreSQL server for the tests that need one, started once per test session.

`postgres_url` starts a throw-away server from a fresh data directory on a free loopback port
(127.0.0.1 only, no unix sockets), with a `deepstation` role that has a password and owns a
`deepstation` database, and yields its SQLAlchemy URL. `postgres_db` gives one test a fresh empty
database on that server and drops it afterwards. When PostgreSQL is not installed, or will not start,
the tests that ask for it are skipped with the reason.

The server runs as the `postgres` OS user when the tests run as root (initdb and postgres refuse root).
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

INSTALL_HINT = "run `make setup-postgres` (or install PostgreSQL >= 13 server binaries)"
START_TIMEOUT_S = 30.0
ROLE = DATABASE = "deepstation"


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: pg_config, the Debian layout, then PATH."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    # Debian/Ubuntu put the server binaries in a versioned folder; newest first
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for folder in candidates:
        if folder and all((Path(folder) / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerUnavailable(Exception):
    """PostgreSQL is missing or would not start; the reason is the message."""


class PostgresServer:
    """One throw-away PostgreSQL cluster: start() it, use .url, stop() it (which also deletes it)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.password = "pw" + secrets.token_hex(8)  # letters and digits only: safe in a URL as is
        self.base: Path | None = None
        self.data: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._log = None
        self._run_as: dict = {}

    # -- the user the server runs as -----------------------------------------------------------------
    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as e:
            raise ServerUnavailable("running as root and there is no `postgres` OS user to run the server as") from e
        os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [],
                        "env": {**os.environ, "HOME": str(self.base), "USER": "postgres", "LOGNAME": "postgres"}}

    def _run(self, *args, timeout=60) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.base, **self._run_as)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> str:
        self.base = Path(tempfile.mkdtemp(prefix="deepstation-pg-"))
        try:
            self._prepare_user()
            self.data = self.base / "data"
            pwfile = self.base / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self._run_as:
                os.chown(pwfile, self._run_as["user"], self._run_as["group"])
            init = self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--pwfile", pwfile,
                             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
            pwfile.unlink()
            if init.returncode != 0:
                raise ServerUnavailable("initdb failed: " + _last_line(init.stderr or init.stdout))
            for attempt in range(3):  # a free port can be taken by someone else before we bind it
                try:
                    self._launch()
                    break
                except _PortTaken:
                    if attempt == 2:
                        raise ServerUnavailable("no free loopback port after 3 tries") from None
            self._create_role_and_database()
            return self.url
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        self.port = free_port()
        log_path = self.base / f"postgres-{self.port}.log"
        self._log = open(log_path, "w")
        # fsync off and friends: the cluster is thrown away, and this makes start and writes fast
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=50"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.base, **self._run_as)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                text = log_path.read_text(errors="replace")
                self._log.close()
                self.process = None
                if "could not bind" in text or "Address already in use" in text:
                    raise _PortTaken()
                raise ServerUnavailable("postgres exited at start: " + _last_line(text))
            try:
                self._admin("postgres").close()
                return
            except Exception as e:  # not accepting connections yet
                last = e
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"postgres did not accept connections within {START_TIMEOUT_S:.0f} s: {last}")
            time.sleep(0.05)

    def _admin(self, dbname: str):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                               dbname=dbname, connect_timeout=2, autocommit=True)

    def _create_role_and_database(self) -> None:
        with self._admin("postgres") as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def create_database(self) -> str:
        name = "test_" + uuid.uuid4().hex[:12]
        with self._admin("postgres") as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def drop_database(self, name: str) -> None:
        with self._admin("postgres") as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: ends leftover connections

    def stop(self) -> None:
        """Stop the server (fast shutdown: ends sessions, no waiting for clients) and delete the cluster."""
        if self.process is not None and self.process.poll() is None:
            self._run(self.bindir / "pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w", "-t", "30", timeout=40)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    @property
    def stopped(self) -> bool:
        gone = self.process is None or self.process.poll() is not None
        return gone and (self.base is None or not self.base.exists())


class _PortTaken(Exception):
    pass


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def start_server() -> PostgresServer:
    """A started server, or pytest.skip with the reason it could not be had."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL not installed: {INSTALL_HINT}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg (PostgreSQL driver) not installed: pip install 'psycopg[binary]'")
    server = PostgresServer(bindir)
    try:
        server.start()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"PostgreSQL in {bindir} could not be started: {e}")
    return server


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server object (for tests that need more than the URL)."""
    server = start_server()
    yield server
    server.stop()
    if not server.stopped:
        raise RuntimeError(f"PostgreSQL test server left behind: pid {server.process.pid}, {server.base}")


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """SQLAlchemy URL of the `deepstation` database on the session's server; the role has a password."""
    return postgres_server.url


@pytest.fixture
def postgres_db(postgres_server):
    """SQLAlchemy URL of a fresh empty database (owned by the `deepstation` role), dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url_for(name)
    postgres_server.drop_database(name)
