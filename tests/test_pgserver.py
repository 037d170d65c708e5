"""The PostgreSQL test server: it starts, data round-trips, and it leaves nothing behind."""
from __future__ import annotations

import socket

import pandas as pd
import pytest
import sqlalchemy as sa

from pgserver import PostgresServer, find_bindir


def test_server_accepts_the_role_with_its_password(postgres_url):
    url = sa.make_url(postgres_url)
    assert url.host == "127.0.0.1" and url.username == "deepstation" and url.password
    engine = sa.create_engine(postgres_url)
    try:
        frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        frame.to_sql("roundtrip", engine, index=False, if_exists="replace")
        back = pd.read_sql("SELECT * FROM roundtrip ORDER BY a", engine)
        pd.testing.assert_frame_equal(back, frame)
        with pytest.raises(sa.exc.OperationalError):  # a wrong password is refused: masking tests mean something
            sa.create_engine(url.set(password="wrong")).connect()
    finally:
        engine.dispose()


def test_postgres_db_is_fresh_and_dropped(postgres_db, postgres_server):
    engine = sa.create_engine(postgres_db)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    name = sa.make_url(postgres_db).database
    assert name.startswith("test_")


def test_stop_leaves_nothing_behind(postgres_server):
    """A second server (same code as the session's) is gone after stop(): process, port and folder."""
    server = PostgresServer(find_bindir())
    server.start()
    base, port, process = server.base, server.port, server.process
    assert base.exists() and process.poll() is None
    server.stop()
    assert process.poll() is not None
    assert not base.exists()
    assert server.stopped
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
