"""Rows from a SQL database: `data: {source: {sql: {url, query, chunksize}}}`, read through SQLAlchemy.

The URL may name environment variables ($NAME or ${NAME}; $$ is a literal $), so a password can live
in the environment rather than in the task file. Rows are streamed in chunks (a server-side cursor where the
database has one) and joined into one frame, which then goes the way of a CSV's. Every message shows the URL
with its password masked; SQLAlchemy's own error text (which can hold the statement and its parameters) is
cut to the driver's first line and scrubbed of the password before a person sees it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd

from deepstation.data.sources import Table
from deepstation.errors import DeepstationError, did_you_mean
from deepstation.track.uri import masked

URL_KEY, QUERY_KEY = "data.source.sql.url", "data.source.sql.query"
CONNECT_TIMEOUT_S = 5
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+)|(\$))")
_READING = {"select", "with", "values", "table", ""}  # statements that only read (`(SELECT ...)` starts with "(")
_TABLE_NAME = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?")  # name or schema.name, nothing else
# drivers SQLAlchemy picks for a bare dialect name, and the installed one to use instead when that is missing
_DRIVER_FALLBACK = {"postgresql": ("psycopg2", "postgresql+psycopg", "psycopg"),
                    "mysql": ("MySQLdb", "mysql+pymysql", "pymysql")}
_INSTALL = {"postgresql": "pip install 'psycopg[binary]'", "mysql": "pip install pymysql",
            "mssql": "pip install pyodbc", "oracle": "pip install oracledb"}


def read_sql(source) -> Table:
    """The rows of `source.query` (a SELECT, or a table name) from the database at `source.url`."""
    sa = _sqlalchemy()
    url, secrets = expand_url(source.url)
    shown = _scrub(url, secrets)
    engine = None
    try:
        engine = _engine(sa, url, shown, secrets)
        statement, what = _statement(sa, engine, source.query, shown, secrets)
        frame = _fetch(sa, engine, statement, source.chunksize, shown, secrets)
        if len(frame) == 0:
            raise DeepstationError(f"{QUERY_KEY}: {what} returned no rows from {shown}; check the query's WHERE "
                                   f"clause or the table's contents")
    except DeepstationError as err:  # a last guard: a password written into the query text stays out too
        raise DeepstationError(_hide(err, secrets)) from None
    finally:
        if engine is not None:
            engine.dispose()
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    base_dir = Path(database).parent if database and database != ":memory:" else Path.cwd()
    return Table(frame, _scrub(f"sql:{shown} ({QUERY_KEY}: {what})", secrets), base_dir)


def describe(source) -> str:
    """A one-line, password-free description of a SQL source as configured (variables left unexpanded)."""
    password = _password(source.sql.url)
    return _scrub(f"sql:{source.sql.url} ({QUERY_KEY}: {_what(source.sql.query)})", [password] if password else [])


# --- the URL --------------------------------------------------------------------------------------


def expand_url(url: str) -> tuple[str, list[str]]:
    """The URL with $NAME / ${NAME} replaced from the environment, and the secrets to keep out of messages.
    A value standing in the user:password part is percent-encoded, so a password may hold @, / or :."""
    head = re.match(r"[^:/]+://([^/?#]*)@", url)
    userinfo_end = head.end(1) if head else -1
    secrets: list[str] = []

    def value(match: re.Match) -> str:
        if match.group(3):
            return "$"
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise DeepstationError(f"{URL_KEY}: the environment variable `{name}` is not set; export it (for a "
                                   f"password, e.g. `export {name}=...`) or write the value in the URL")
        text = os.environ[name]
        if match.start() < userinfo_end:
            text = quote(text, safe="")
            secrets.append(os.environ[name])
        return text

    expanded = _VARIABLE.sub(value, url)
    password = _password(expanded)
    if password:
        secrets += [password, unquote(password)]
    secrets += [quote(s, safe="") for s in secrets]
    return expanded, sorted({s for s in secrets if s}, key=len, reverse=True)


def _password(url: str) -> str | None:
    match = re.match(r"[^:/]+://[^:/@]*:([^@]*)@", url)  # as SQLAlchemy reads it: to the first @
    return match.group(1) if match else None


def _port(url: str) -> str | None:
    """What stands after host: in dialect://[userinfo@]host:PORT/..., or None when there is no host or port."""
    match = re.match(r"[^:/]+://(?:[^:/]*(?::[^@]*)?@)?(\[[^\]]*\]|[^:/?#@]+):([^/?#]*)", url)  # as SQLAlchemy
    return match.group(2) if match else None


def _scrub(text, secrets: list[str]) -> str:
    """Text fit to show: the URL's password masked, and any secret that slipped in elsewhere too."""
    return _hide(masked(str(text)), secrets)


def _hide(text, secrets: list[str]) -> str:
    """The secrets replaced by ***, wherever they stand (the examples of URLs in a message stay readable)."""
    text = str(text)
    for secret in secrets:
        if len(secret) >= 3:  # replacing a one-letter "password" everywhere would garble the message
            text = text.replace(secret, "***")
    return text


def _engine(sa, url: str, shown: str, secrets: list[str]):
    example = "such as sqlite:///data.db or postgresql://user:${PGPASSWORD}@host:5432/db"
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: SQLAlchemy's int() of a port that is not a number
        port = _port(url)
        if port is not None and not port.isdigit():
            what = f"the port `{_scrub(port, secrets)}` in `{shown}` is not a number" if port else \
                f"`{shown}` has a `:` after the host but no port"
            raise DeepstationError(f"{URL_KEY}: {what}; write host:PORT with digits only, such as db.example:5432, "
                                   f"or leave `:PORT` out for the database's default") from None
        raise DeepstationError(f"{URL_KEY}: `{shown}` is not a database URL; expected dialect://user:password@host/"
                               f"database, {example}") from None
    backend = parsed.get_backend_name()
    fallback = _DRIVER_FALLBACK.get(parsed.drivername)
    if fallback and not _installed(fallback[0]) and _installed(fallback[2]):
        parsed = parsed.set(drivername=fallback[1])  # postgresql:// means psycopg2 to SQLAlchemy; we ship psycopg 3
    if backend == "sqlite":
        _check_sqlite_file(parsed, shown)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend in ("postgresql", "mysql") else {}
    try:
        return sa.create_engine(parsed, connect_args=connect_args)
    except sa.exc.NoSuchModuleError:
        raise DeepstationError(f"{URL_KEY}: `{parsed.drivername}` in `{shown}` is not a database SQLAlchemy knows; "
                               f"use sqlite, postgresql, mysql, mssql or oracle, {example}."
                               + did_you_mean(backend, ["sqlite", "postgresql", "mysql", "mssql", "oracle"])) from None
    except ImportError as err:
        hint = _INSTALL.get(backend, "install its Python driver")
        raise DeepstationError(f"{URL_KEY}: the driver for `{parsed.drivername}` is not installed "
                               f"({_scrub(err, secrets)}); {hint}") from None
    except (sa.exc.ArgumentError, TypeError, ValueError) as err:
        raise DeepstationError(f"{URL_KEY}: `{shown}` cannot be used ({_first_line(err, secrets)})") from None


def _check_sqlite_file(url, shown: str) -> None:
    """SQLite creates a missing file on connect; a typo in the path would then read as `no such table`."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise DeepstationError(f"{URL_KEY}: the SQLite file {Path(database).resolve()} does not exist (from "
                               f"`{shown}`); check the path (relative paths are read from the task file's folder)")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- the query ------------------------------------------------------------------------------------


def _what(query: str) -> str:
    query = " ".join(query.split())
    if _TABLE_NAME.fullmatch(query):
        return f"table `{query}`"
    return f"`{query if len(query) <= 60 else query[:57] + '...'}`"


def _statement(sa, engine, query: str, shown: str, secrets: list[str]):
    """(what to run, how messages name it). A table name alone reads the table, its name quoted by the dialect."""
    query = query.strip().rstrip(";").strip()
    if not query:
        raise DeepstationError(f"{QUERY_KEY}: empty; write a SELECT or the name of a table")
    if not _TABLE_NAME.fullmatch(query):
        first = query.split(None, 1)[0].lower().lstrip("(")
        if first not in _READING:
            raise DeepstationError(f"{QUERY_KEY}: expected a SELECT (or WITH ... SELECT) or a table name, got "
                                   f"{_what(query)}; training data is only ever read")
        # text(): SQLAlchemy escapes % for the driver (psycopg reads it as a placeholder); escaping each
        # `:name` (the pattern SQLAlchemy reads as a bind parameter) keeps ':30' or ':x' in the SQL as written
        return sa.text(re.sub(r"(?<![:\w\\]):(\w+)(?![:\w])", r"\\:\1", query)), _what(query)
    schema, _, name = query.rpartition(".")
    schema = schema or None
    with _connected(sa, engine, shown, secrets) as conn:
        inspector = sa.inspect(conn)
        try:
            names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
        except sa.exc.SQLAlchemyError as err:
            raise DeepstationError(f"{QUERY_KEY}: cannot list the tables of {shown} ({_first_line(err, secrets)})") \
                from None
    if name not in names:
        folded = [n for n in names if n.lower() == name.lower()]
        if len(folded) != 1:
            where = f"schema `{schema}` of {shown}" if schema else shown
            raise DeepstationError(f"{QUERY_KEY}: no table `{query}` in {where}; its tables are "
                                   f"{', '.join(sorted(names)) or 'none'}." + did_you_mean(name, names))
        name = folded[0]  # `Iris` finds `iris`, as an unquoted name would in SQL
    table = sa.table(name, schema=schema)
    return sa.select(sa.text("*")).select_from(table), _what(query)


def _fetch(sa, engine, statement, chunksize: int, shown: str, secrets: list[str]) -> pd.DataFrame:
    with _connected(sa, engine, shown, secrets) as conn:
        # stream_results: a server-side cursor where the database has one, so rows arrive chunksize at a time
        conn = conn.execution_options(stream_results=True, max_row_buffer=chunksize)
        try:
            chunks = list(pd.read_sql(statement, conn, chunksize=chunksize))
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as err:  # pandas wraps the first in the second
            raise DeepstationError(f"{QUERY_KEY}: the query failed on {shown} ({_first_line(err, secrets)}); fix "
                                   f"the SQL, or give a table name alone to read the whole table") from None
    return concat_chunks(chunks)


def concat_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks as one frame with the dtypes one unchunked read gives: a chunk whose column is all NULL reads
    as object, which would otherwise turn a whole numeric or text column into object."""
    if not chunks:
        return pd.DataFrame()
    if len(chunks) == 1:
        return chunks[0]
    for column in chunks[0].columns:
        empty = [i for i, c in enumerate(chunks) if c[column].isna().all()]
        typed = [c[column].iloc[:0] for i, c in enumerate(chunks) if i not in empty]
        if not empty or not typed:
            continue
        target = pd.concat(typed).dtype
        if target.kind in "iub":
            target = "float64" if target.kind != "b" else object  # NULLs among ints read as floats
        for i in empty:
            if chunks[i][column].dtype != target:
                chunks[i] = chunks[i].astype({column: target})
    return pd.concat(chunks, ignore_index=True)


class _connected:
    """engine.connect(), with a failure to connect as one line naming the URL."""

    def __init__(self, sa, engine, shown: str, secrets: list[str]):
        self.sa, self.engine, self.shown, self.secrets = sa, engine, shown, secrets

    def __enter__(self):
        try:
            self.conn = self.engine.connect()
        except self.sa.exc.SQLAlchemyError as err:
            raise DeepstationError(f"{URL_KEY}: cannot connect to {self.shown} ({_first_line(err, self.secrets)}); "
                                   f"check the host, port, database, user and password") from None
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()


def _first_line(err: Exception, secrets: list[str]) -> str:
    """The driver's own first line (SQLAlchemy appends the statement, its parameters and a link), scrubbed."""
    if isinstance(err, pd.errors.DatabaseError) and err.__cause__ is not None:
        err = err.__cause__
    inner = getattr(err, "orig", None) or err
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    return _scrub(lines[0] if lines else type(inner).__name__, secrets)


def _sqlalchemy():
    try:
        import sqlalchemy
    except ImportError:
        raise DeepstationError("data.source.sql: reading from a database needs SQLAlchemy; "
                               "pip install sqlalchemy") from None
    return sqlalchemy
