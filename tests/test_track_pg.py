"""Tracking against a real PostgreSQL server (tests/pgserver.py): a team's store. Skipped, with the reason,
where PostgreSQL cannot be installed or started."""
from __future__ import annotations

import json

import pytest

import deepstation
from conftest import cli, last_json, user_error, write_task
from deepstation.run import RunFolder
from test_track import assert_every_epoch_arrived, client, concurrent_runs, steps, task_in


@pytest.fixture
def team_store(postgres_url, monkeypatch) -> str:
    """The session's PostgreSQL database as the tracking store (MLflow's tables are made once per session)."""
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", postgres_url)
    return postgres_url


def test_a_run_is_tracked_in_postgresql(table_csv, team_store):
    assert team_store.startswith("postgresql+psycopg://")
    out = last_json(cli("train", write_task(table_csv.parent, task_in("team", table_csv, epochs=2)), "--json",
                        "--quiet", check=0).stdout)
    got = client(team_store).get_run(out["tracking_run_id"])
    assert got.info.status == "FINISHED" and steps(client(team_store), out["tracking_run_id"]) == [1, 2]
    assert got.data.metrics["test.mae"] == pytest.approx(out["metrics"]["test"]["mae"])
    rows = last_json(cli("runs", "list", "--experiment", "team", "--json", check=0).stdout)
    assert rows[0]["tracking_id"] == out["tracking_run_id"] and rows[0]["cost_usd"] > 0
    shown = cli("runs", "show", out["run"], check=0).stdout
    assert "postgresql+psycopg://deepstation:***@" in shown or out["tracking_run_id"] in shown
    usage = last_json(cli("usage", "--by", "project", "--json", check=0).stdout)
    assert any(r["project"] == "team" and r["runs"] >= 1 for r in usage)


def test_wrong_password_is_one_clear_line(table_csv, postgres_url, monkeypatch):
    wrong = postgres_url.replace("://deepstation:", "://deepstation:not-the-password-", 1)
    password = postgres_url.split("://deepstation:", 1)[1].split("@", 1)[0]
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", wrong)
    line = user_error(cli("train", write_task(table_csv.parent, task_in("team", table_csv))))
    assert "unreachable" in line and "--no-track" in line and password not in line and "***@" in line


class DatabaseOutage:
    """A real outage of one database: new connections refused and open ones ended, until allowed again."""

    def __init__(self, server, url: str):
        self.server, self.name = server, url.rsplit("/", 1)[1]
        self.append = RunFolder.append_metrics  # the folder's own, before any patch

    def down(self):
        with self.server._admin("postgres") as conn:
            conn.execute(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.name,))

    def up(self):
        with self.server._admin("postgres") as conn:
            conn.execute(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS true")

    def during_epochs(self, monkeypatch, first: int, last: int | None):
        real, outage = self.append, self

        def append(folder, record):
            real(folder, record)
            if record["epoch"] == first:
                outage.down()
            if last is not None and record["epoch"] == last:
                outage.up()

        monkeypatch.setattr(RunFolder, "append_metrics", append)


def test_postgresql_lost_mid_run_training_goes_on_and_the_metrics_follow(table_csv, postgres_server, postgres_db,
                                                                        monkeypatch, capsys):
    from deepstation.track.tracker import Tracker

    monkeypatch.setattr(Tracker, "SYNC_EVERY_S", 0.0)
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", postgres_db)
    outage = DatabaseOutage(postgres_server, postgres_db)
    outage.during_epochs(monkeypatch, first=2, last=4)
    try:
        run = deepstation.train(task_in("pg-outage", table_csv, epochs=6))
    finally:
        outage.up()
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert steps(client(postgres_db), run.summary["tracking_run_id"]) == [1, 2, 3, 4, 5, 6]
    assert client(postgres_db).get_run(run.summary["tracking_run_id"]).info.status == "FINISHED"

    # down from epoch 2 to the end: the folder keeps the rest until `runs sync`
    outage.during_epochs(monkeypatch, first=2, last=None)
    try:
        run = deepstation.train(task_in("pg-outage", table_csv, epochs=4))
    finally:
        outage.up()
    run_id = run.summary["tracking_run_id"]
    assert client(postgres_db).get_run(run_id).info.status == "RUNNING"
    assert not json.loads((run.dir / "tracking.json").read_text())["finished"]
    assert "synced" in cli("runs", "sync", check=0).stdout  # every run folder with something to send
    assert client(postgres_db).get_run(run_id).info.status == "FINISHED"
    assert steps(client(postgres_db), run_id) == [1, 2, 3, 4]


def test_eight_runs_at_once_lose_no_metric_postgresql(postgres_url, tmp_path, capsys):
    assert_every_epoch_arrived(postgres_url, concurrent_runs(postgres_url, "eight-pg", tmp_path))
    assert "warning" not in capsys.readouterr().err
