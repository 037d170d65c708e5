"""Training data from SQL: SQLite and a real PostgreSQL (tests/pgserver.py) read like a CSV, in chunks, with
passwords from the environment, and every mistake as one line that never shows the password."""
from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import cli, last_json, table_task, user_error, write_task
from deepstation.config import SqlQuery, load_task
from deepstation.data.prepare import prepare
from deepstation.data.sources import describe_source, read_source
from deepstation.data.sql import concat_chunks, expand_url, read_sql


def to_sql(url: str, frame: pd.DataFrame, table: str = "rows") -> None:
    engine = sa.create_engine(url)
    try:
        frame.to_sql(table, engine, index=False, if_exists="replace")
    finally:
        engine.dispose()


def sql_task(url: str, query: str = "rows", **trainer) -> dict:
    task = table_task("unused", output="kind", kind="category", **trainer)
    task["data"]["source"] = {"sql": {"url": url, "query": query}}
    return task


@pytest.fixture
def sqlite_db(table_csv, tmp_path):
    """The table_csv rows in a SQLite file next to the task files (tasks/rows.db), as table `rows`."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    to_sql(f"sqlite:///{folder / 'rows.db'}", pd.read_csv(table_csv))
    return folder / "rows.db"


@pytest.fixture
def pg_rows(postgres_db, table_csv):
    """A fresh PostgreSQL database holding the table_csv rows as table `rows`; its URL."""
    to_sql(postgres_db, pd.read_csv(table_csv))
    return postgres_db


def password_of(url: str) -> str:
    return sa.make_url(url).password


# --- end to end -------------------------------------------------------------------------------


def test_train_from_sqlite_with_a_path_relative_to_the_task_file(sqlite_db, tmp_path):
    """The task sits in tasks/, the working folder is tmp_path: sqlite:///rows.db is tasks/rows.db."""
    task = write_task(sqlite_db.parent, sql_task("sqlite:///rows.db"))
    summary = last_json(cli("train", task, "--epochs", 1, "--json", "--quiet", "--no-track", check=0).stdout)
    assert sum(summary["data"]["rows"].values()) == 240
    assert "accuracy" in json.dumps(summary["metrics"]["test"])
    assert not (tmp_path / "rows.db").exists()  # nothing was created in the working folder
    evaluated = last_json(cli("evaluate", summary["run_dir"], "--json", check=0).stdout)
    assert evaluated["data"] == f"sql:sqlite:///{sqlite_db} (data.source.sql.query: table `rows`)"


def test_train_from_postgresql_with_the_password_from_the_environment(pg_rows, monkeypatch, capsys):
    from deepstation.run import train

    url = sa.make_url(pg_rows)
    monkeypatch.setenv("DS_TEST_PGPASSWORD", url.password)
    templated = pg_rows.replace(f":{url.password}@", ":${DS_TEST_PGPASSWORD}@")
    assert "${DS_TEST_PGPASSWORD}" in templated
    run = train(sql_task(templated, "SELECT x1, x2, colour, kind FROM rows ORDER BY x1"), epochs=1, track=False)
    assert sum(run.summary["data"]["rows"].values()) == 240
    assert set(run.evaluate()) == {"train", "valid", "test"}  # the saved task reads the database again
    saved = run.dir.joinpath("config.yaml").read_text()
    assert "${DS_TEST_PGPASSWORD}" in saved  # the task is kept as written: the variable, not its value
    everything = saved + json.dumps(run.summary, default=str) + "".join(capsys.readouterr())
    assert url.password not in everything


# --- the same rows as a CSV --------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sql_and_csv_give_identical_prepared_tables(database, table_csv, tmp_path, request):
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'rows.db'}"
        to_sql(url, pd.read_csv(table_csv))
    else:
        url = request.getfixturevalue("pg_rows")
    from_csv = load_task(table_task(table_csv, output="kind", kind="category"))
    from_sql = load_task(sql_task(url))
    a = prepare(from_csv, read_source(from_csv.data.source))
    b = prepare(from_sql, read_source(from_sql.data.source))
    assert a.state() == b.state()
    for split in ("train", "valid", "test"):
        assert (a.parts[split].rows == b.parts[split].rows).all()
        for name in ("num", "cat"):
            assert np.array_equal(a.parts[split].features["features"][name].numpy(),
                                  b.parts[split].features["features"][name].numpy())
        assert np.array_equal(a.parts[split].targets["kind"].numpy(), b.parts[split].targets["kind"].numpy())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_chunked_reading_gives_the_unchunked_frame(database, tmp_path, request):
    """Chunks of 7 rows, some with a column all NULL (which pandas reads as object), join into the same frame."""
    n = 30
    frame = pd.DataFrame({"i": np.arange(n), "x": np.linspace(0, 1, n), "label": [f"c{k % 3}" for k in range(n)],
                          "sparse": [float(k) if k < 5 else None for k in range(n)],
                          "word": [None if 7 <= k < 21 else f"w{k}" for k in range(n)],
                          "count": [None if 7 <= k < 14 else k for k in range(n)]})
    url = f"sqlite:///{tmp_path / 'c.db'}" if database == "sqlite" else request.getfixturevalue("postgres_db")
    to_sql(url, frame, "c")
    chunked = read_sql(SqlQuery(url=url, query="SELECT * FROM c ORDER BY i", chunksize=7)).frame
    whole = read_sql(SqlQuery(url=url, query="SELECT * FROM c ORDER BY i", chunksize=1000)).frame
    engine = sa.create_engine(url)
    try:
        direct = pd.read_sql("SELECT * FROM c ORDER BY i", engine)
    finally:
        engine.dispose()
    pd.testing.assert_frame_equal(chunked, whole)
    pd.testing.assert_frame_equal(whole, direct)
    assert chunked["sparse"].dtype == "float64" and chunked["count"].dtype == "float64"


def test_concat_chunks_keeps_dtypes_of_all_null_chunks():
    a = pd.DataFrame({"n": [1, 2], "s": pd.Series(["x", "y"], dtype="str")})
    b = pd.DataFrame({"n": [None, None], "s": [None, None]}, dtype=object)
    joined = concat_chunks([a, b])
    assert joined["n"].dtype == "float64" and joined["s"].dtype == "str"
    assert joined["n"].isna().sum() == 2 and joined["s"].isna().sum() == 2


def test_a_table_name_reads_the_whole_table_quoted(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    to_sql(url, pd.DataFrame({"order": [1, 2], "select": ["a", "b"]}), "Order")
    table = read_sql(SqlQuery(url=url, query="order"))  # a reserved word, and a different case
    assert list(table.frame.columns) == ["order", "select"] and len(table.frame) == 2
    assert table.origin == f"sql:{url} (data.source.sql.query: table `order`)"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_percent_signs_and_colons_in_a_query_stay_as_written(database, tmp_path, request):
    """psycopg reads % as a placeholder and SQLAlchemy reads :name as a parameter; neither may touch the SQL."""
    url = f"sqlite:///{tmp_path / 'p.db'}" if database == "sqlite" else request.getfixturevalue("postgres_db")
    to_sql(url, pd.DataFrame({"a": [1, 2], "s": ["a%b", "c:d"]}), "p")
    cast = "CAST(a AS TEXT)" if database == "sqlite" else "a::text"
    frame = read_sql(SqlQuery(url=url, query=f"SELECT s, '50%' AS pct, ':x 1:30' AS t, {cast} AS at FROM p "
                                             f"WHERE s LIKE '%' ORDER BY a")).frame
    assert frame.to_dict("list") == {"s": ["a%b", "c:d"], "pct": ["50%"] * 2, "t": [":x 1:30"] * 2, "at": ["1", "2"]}


# --- URLs and the environment -------------------------------------------------------------------


def test_variables_in_the_url_are_expanded_and_passwords_encoded(monkeypatch):
    monkeypatch.setenv("DS_USER", "bob")
    monkeypatch.setenv("DS_PW", "p@ss/w:rd")
    url, secrets = expand_url("postgresql://$DS_USER:${DS_PW}@db.example:5432/shop?sslmode=require&x=$$1")
    parsed = sa.make_url(url)
    assert (parsed.username, parsed.password) == ("bob", "p@ss/w:rd")
    assert (parsed.host, parsed.database) == ("db.example", "shop")
    assert parsed.query == {"sslmode": "require", "x": "$1"}
    assert "p@ss/w:rd" in secrets
    assert describe_source(load_task(sql_task("postgresql://bob:hunter22@h/db")).data.source) == \
        "sql:postgresql://bob:***@h/db (data.source.sql.query: table `rows`)"


def test_an_undefined_variable_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DS_NOT_SET", raising=False)
    line = user_error(cli("train", write_task(tmp_path, sql_task("postgresql://bob:${DS_NOT_SET}@h/db"))))
    assert "data.source.sql.url" in line and "`DS_NOT_SET` is not set" in line


def test_relative_sqlite_paths_resolve_against_the_task_file(tmp_path):
    base = tmp_path / "tasks"
    cases = {"sqlite:///rows.db": f"sqlite:///{base / 'rows.db'}",
             "sqlite+pysqlite:///sub/rows.db?timeout=3": f"sqlite+pysqlite:///{base / 'sub/rows.db'}?timeout=3",
             "sqlite:////abs/rows.db": "sqlite:////abs/rows.db", "sqlite:///:memory:": "sqlite:///:memory:",
             "sqlite://": "sqlite://", "sqlite:///$DATA/rows.db": "sqlite:///$DATA/rows.db",
             "postgresql://h/db": "postgresql://h/db"}
    for given, expected in cases.items():
        task = load_task(sql_task(given), base_dir=base)
        assert task.data.source.sql.url == expected, given
        again = load_task(task.model_dump(), base_dir=tmp_path / "elsewhere")  # resolving twice changes nothing
        assert again.data.source.sql.url == expected, given


# --- mistakes: one line, exit 2, no password ------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_urls_are_one_line_without_the_password(tmp_path, postgres_url):
    secret = "Sup3rSecretPw"
    pg = sa.make_url(postgres_url)
    cases = {
        f"nosuchdb://bob:{secret}@h/db": "is not a database SQLAlchemy knows",
        f"postgres://bob:{secret}@h/db": "Did you mean `postgresql`?",
        "sqlite:///missing.db": "does not exist",
        f"postgresql://bob:{secret}@127.0.0.1:{closed_port()}/db": "cannot connect to postgresql://bob:***@127.0.0.1",
        pg.set(password=secret).render_as_string(hide_password=False): "password authentication failed",
    }
    for url, expected in cases.items():
        result = cli("train", write_task(tmp_path, sql_task(url)))
        line = user_error(result)
        assert "data.source.sql.url" in line and expected in line, line
        assert secret not in result.stdout + result.stderr
    assert not (tmp_path / "missing.db").exists()


def test_failing_queries_are_one_line_without_the_password(tmp_path, pg_rows):
    password = password_of(pg_rows)
    cases = {
        f"SELECT x1 FROM rows WHERE colour = '{password}' AND": "syntax error",
        "SELECT x1 FROM no_such_table": 'relation "no_such_table" does not exist',
        "row": "no table `row`",  # and a suggestion
        f"DELETE FROM rows WHERE colour = '{password}'": "expected a SELECT",
        f"SELECT * FROM rows WHERE colour = '{password}'": "returned no rows",
    }
    for query, expected in cases.items():
        result = cli("train", write_task(tmp_path, sql_task(pg_rows, query)))
        line = user_error(result)
        assert "data.source.sql.query" in line and expected in line, line
        assert password not in result.stdout + result.stderr, line
    assert "Did you mean `rows`?" in user_error(cli("train", write_task(tmp_path, sql_task(pg_rows, "row"))))
    engine = sa.create_engine(pg_rows)
    try:  # the DELETE never ran
        assert pd.read_sql("SELECT count(*) AS n FROM rows", engine)["n"][0] == 240
    finally:
        engine.dispose()


def test_a_missing_column_names_the_query_and_masks_the_password(tmp_path, pg_rows):
    result = cli("train", write_task(tmp_path, sql_task(pg_rows, "SELECT x1, colour, kind FROM rows")))
    line = user_error(result)
    assert "column `x2`" in line and "data.source.sql.query" in line and ":***@" in line, line
    assert password_of(pg_rows) not in result.stdout + result.stderr
