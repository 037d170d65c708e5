"""The tracking store in use writes and reads back a row: a TEMPORARY table inside a transaction that is rolled
back, so the store's schema is never touched. An MLflow server (http://) answers on /health instead."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from deepstation.track.uri import URI_ENV, is_sql, masked, tracking_uri
from deepstation.workstation.checks import Context, check, fail, ok, skip

FIX = f"check the database is running and the URI is right (task tracking.uri or ${URI_ENV})"
CONNECT_TIMEOUT = 10  # seconds


@check("sql", timeout=30, quick=15, fix=FIX)
def sql(ctx: Context) -> dict:
    uri = tracking_uri()
    shown = masked(uri)
    if uri.startswith(("http://", "https://")):
        return health(uri, shown, ctx)
    if not is_sql(uri):
        return skip(f"the tracking store {shown} is not a SQL database or an MLflow server")
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        return fail("SQLAlchemy is not installed", "pip install 'deepstation[track]' (or `make setup`)",
                    {"uri": shown})
    try:
        measured = round_trip(uri, timeout=min(CONNECT_TIMEOUT, ctx.timeout / 2))
    except Exception as err:  # noqa: BLE001 (an unreachable or broken store is this check's failure)
        return fail(f"{shown}: {scrub(_reason(err), uri)}", FIX, {"uri": shown})
    measured["uri"] = shown
    where = f"; no store yet, {measured['note']}" if measured.get("note") else ""
    return ok(f"{shown} ({measured['dialect']}): wrote and read back a row in {measured['round_trip_ms']:.1f} ms"
              + where, measured)


def round_trip(uri: str, timeout: float) -> dict:
    """Connect, CREATE TEMPORARY TABLE, insert, select, roll back. A SQLite file that does not exist yet is not
    created: the round trip goes to a scratch file in its folder, deleted afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(uri)
    note, scratch = None, None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            if not path.parent.is_dir():
                raise FileNotFoundError(f"the folder {path.parent} of the SQLite store does not exist")
            scratch = path.parent / f".ds-doctor-{uuid.uuid4().hex[:8]}.db"
            url = url.set(database=str(scratch))
            note = f"{path.name} can be created in {path.parent}"
    engine = create_engine(url, poolclass=NullPool, connect_args=_connect_args(url.get_backend_name(), timeout))
    try:
        began = time.perf_counter()
        with engine.connect() as conn:
            tx = conn.begin()
            try:
                conn.execute(text("CREATE TEMPORARY TABLE ds_doctor_probe (id INTEGER, note VARCHAR(32))"))
                conn.execute(text("INSERT INTO ds_doctor_probe (id, note) VALUES (:id, :note)"),
                             {"id": 7, "note": "deepstation doctor"})
                got = conn.execute(text("SELECT id, note FROM ds_doctor_probe")).all()
            finally:
                tx.rollback()
        ms = (time.perf_counter() - began) * 1000
        if [tuple(r) for r in got] != [(7, "deepstation doctor")]:
            raise RuntimeError(f"read back {got!r} instead of the row written")
        return {"dialect": engine.dialect.name, "driver": engine.dialect.driver, "round_trip_ms": round(ms, 1),
                "note": note}
    finally:
        engine.dispose()
        if scratch is not None:
            scratch.unlink(missing_ok=True)


def _connect_args(backend: str, timeout: float) -> dict:
    seconds = max(1, int(timeout))
    if backend == "sqlite":
        return {"timeout": seconds}  # a locked database: wait this long, then fail
    if backend in ("postgresql", "mysql"):
        return {"connect_timeout": seconds}
    return {}


def health(uri: str, shown: str, ctx: Context) -> dict:
    """An MLflow tracking server: GET /health answers OK."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=min(CONNECT_TIMEOUT, ctx.timeout / 2)) as response:
            body = response.read(200).decode(errors="replace").strip()
            status = response.status
    except (urllib.error.URLError, OSError) as err:
        return fail(f"{shown}: /health did not answer: {scrub(_reason(err), uri)}",
                    "start the server (`mlflow server`) or fix the URI", {"uri": shown})
    ms = round((time.perf_counter() - began) * 1000, 1)
    measured = {"uri": shown, "http_status": status, "body": body, "round_trip_ms": ms}
    if status != 200:
        return fail(f"{shown}: /health answered HTTP {status}", "check the server's log", measured)
    return ok(f"MLflow server {shown}: /health answered {body or status} in {ms:.1f} ms", measured)


def _reason(err: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's wrapping."""
    inner = getattr(err, "orig", None) or err
    lines = [ln.strip() for ln in str(inner).strip().splitlines() if ln.strip()]
    return f"{type(inner).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def scrub(text: str, uri: str) -> str:
    """The message with the URI's password (if any) replaced by ***, wherever it appears."""
    text = masked(text)
    try:
        from sqlalchemy.engine import make_url

        password = make_url(uri).password
    except Exception:  # noqa: BLE001 (not a SQLAlchemy URL: masked() has done what it can)
        password = None
    return text.replace(str(password), "***") if password else text
