"""The MLflow store: reached once per process and URI, probed before use, with retries where SQLite is busy.

Every call goes through an explicit `MlflowClient(tracking_uri=...)`; nothing here touches MLflow's global
tracking URI, so several stores can be used in one process (a test against SQLite and PostgreSQL, say).
MLflow is imported here, on first use: `import mlflow` costs one to two seconds.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from pathlib import Path

from deepstation.errors import DeepstationError
from deepstation.track.uri import is_sql, masked

ARTIFACTS_ENV = "DEEPSTATION_ARTIFACT_ROOT"
CONNECT_TIMEOUT_S = 10
_stores: dict = {}
_lock = threading.Lock()


class StoreUnreachable(DeepstationError):
    """The tracking store could not be reached; the message names the masked URI."""


def connect(uri: str) -> "Store":
    """The store at `uri`, probed once per process; StoreUnreachable (one line) when it cannot be reached."""
    with _lock:
        store = _stores.get(uri)
        if store is None:
            store = Store(uri)
            store.probe()
            _stores[uri] = store
        return store


class Store:
    def __init__(self, uri: str):
        self.uri = uri
        self.shown = masked(uri)
        self._client = None
        self._experiments: dict = {}

    # -- reaching the store --
    def probe(self) -> None:
        """Connect once, with a short timeout, before MLflow's own engine (which retries for ~100 s)."""
        try:
            if is_sql(self.uri):
                _probe_sql(self.uri)
            elif self.uri.startswith(("http://", "https://")):
                import requests

                requests.get(self.uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S).raise_for_status()
            self._first_query()
        except StoreUnreachable:
            raise
        except Exception as err:
            raise StoreUnreachable(f"tracking store {self.shown} is unreachable ({brief(err)})") from err

    def _first_query(self) -> None:
        """The first query creates MLflow's tables in a new database. Processes doing that at once on one new
        SQLite file break it (alembic's half-done temporary tables), so there they take turns, by a lock file
        in the temp folder; a database already made is not locked."""
        db = sqlite_path(self.uri)
        if db is None or _has_tables(db):
            self.client.search_experiments(max_results=1)
            return
        import fcntl
        import hashlib
        import tempfile

        name = hashlib.sha1(str(db.resolve()).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"deepstation-mlflow-{name}.lock"
        with open(path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.client.search_experiments(max_results=1)
            # the tables are made: whoever still waits on this file, or opens a new one, finds them there
            path.unlink(missing_ok=True)

    @property
    def client(self):
        if self._client is None:
            # MLflow logs "Creating initial MLflow database tables..." and a traceback for each failed query; the
            # failures reach us as exceptions, and a lost store is reported in one warning line, not many
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            if self.uri.startswith(("http://", "https://")):  # MLflow's default retries last minutes per call
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(CONNECT_TIMEOUT_S))
            try:
                from mlflow.tracking import MlflowClient
            except ImportError as err:
                raise DeepstationError("tracking needs MLflow: pip install 'deepstation[track]' (or train with "
                                       "--no-track)") from err
            self._client = MlflowClient(tracking_uri=_with_timeout(self.uri), registry_uri=_with_timeout(self.uri))
        return self._client

    def call(self, method: str, *args, **kwargs):
        """client.<method>(...), retried with backoff while SQLite says the database is locked."""
        fn = getattr(self.client, method)
        for attempt in range(8):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                if attempt == 7 or not _busy(err):
                    raise
                time.sleep(0.05 * 2 ** attempt * (0.5 + random.random()))

    # -- experiments --
    def experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing (two processes creating it at once both get it)."""
        if name in self._experiments:
            return self._experiments[name]
        found = self.call("get_experiment_by_name", name)
        if found is None:
            try:
                found_id = self.call("create_experiment", name, artifact_location=artifact_root(self.uri, name))
            except Exception as err:
                found = self.call("get_experiment_by_name", name)  # another process created it first
                if found is None:
                    raise err
                found_id = found.experiment_id
        else:
            found_id = found.experiment_id
        self._experiments[name] = found_id
        return found_id

    def search_runs(self, experiment_ids=None, filter_string: str = "", limit: int | None = None) -> list:
        """Runs, newest first, across every experiment unless given; pages through the store."""
        from mlflow.entities import ViewType

        if experiment_ids is None:
            experiment_ids = [e.experiment_id for e in self.call("search_experiments", view_type=ViewType.ALL)]
        if not experiment_ids:
            return []
        runs, token = [], None
        while True:
            page = self.call("search_runs", experiment_ids, filter_string, max_results=min(limit or 1000, 1000),
                             order_by=["attributes.start_time DESC"], page_token=token)
            runs.extend(page)
            token = page.token
            if not token or (limit and len(runs) >= limit):
                return runs[:limit] if limit else runs


def artifact_root(uri: str, experiment: str) -> str:
    """Where an experiment's artifacts go: $DEEPSTATION_ARTIFACT_ROOT, else `mlartifacts/` beside a SQLite
    file, else `mlartifacts/` in the working folder (a team store wants a shared folder or s3:// here)."""
    base = os.environ.get(ARTIFACTS_ENV)
    if not base:
        db = sqlite_path(uri)
        folder = (db.parent if db is not None else Path.cwd()) / "mlartifacts"
        base = folder.resolve().as_uri()
    elif "://" not in base:
        base = Path(base).resolve().as_uri()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return f"{base.rstrip('/')}/{safe}"


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:///:memory:"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def brief(err: BaseException) -> str:
    """An exception as one short line."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = masked(text)
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def _has_tables(db: Path) -> bool:
    """MLflow's tables are in this SQLite file (its migrations recorded)."""
    import sqlite3

    if not db.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _busy(err: BaseException) -> bool:
    text = str(err).lower()
    return "database is locked" in text or "database is busy" in text or "sqlite_busy" in text


def _with_timeout(uri: str) -> str:
    """PostgreSQL URIs get a connect timeout unless they name one: an unreachable host fails in seconds."""
    if uri.startswith("postgresql") and "connect_timeout=" not in uri:
        return uri + ("&" if "?" in uri else "?") + f"connect_timeout={CONNECT_TIMEOUT_S}"
    return uri


def _probe_sql(uri: str) -> None:
    db = sqlite_path(uri)
    if db is not None:
        if not db.parent.is_dir():
            raise StoreUnreachable(f"tracking store {masked(uri)}: the folder {db.parent} does not exist")
        return  # SQLite creates the file; MLflow's first query below checks it is a database
    import sqlalchemy

    engine = sqlalchemy.create_engine(_with_timeout(uri), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
