"""Tracking in MLflow (SQLite): what a run records, resume, compare and evaluate runs, runs/usage/register verbs,
and the faults: store away at the start, lost mid-run, runs at once, a run killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import deepstation
from conftest import ROOT, cli, last_json, table_task, user_error, write_task
from deepstation.run import RunFolder


def client(uri=None):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or os.environ["DEEPSTATION_TRACKING_URI"])


def task_in(experiment: str, source, **trainer) -> dict:
    raw = table_task(source, **trainer)
    raw["tracking"] = {"experiment": experiment}
    return raw


def steps(c, run_id, key="train.loss") -> list[int]:
    return sorted(m.step for m in c.get_metric_history(run_id, key))


@pytest.fixture
def every_epoch(monkeypatch):
    """Send each epoch's line at once (the tracker otherwise sends at most once a second)."""
    from deepstation.track.tracker import Tracker

    monkeypatch.setattr(Tracker, "SYNC_EVERY_S", 0.0)


# -- what a run records --------------------------------------------------------------------------------


def test_a_run_is_tracked_with_params_metrics_tags_artifacts_and_usage(table_csv):
    run = deepstation.train(task_in("recorded", table_csv, epochs=3))
    run_id = run.summary["tracking_run_id"]
    got = client().get_run(run_id)
    assert got.info.status == "FINISHED"
    params, metrics, tags = got.data.params, got.data.metrics, got.data.tags
    assert params["trainer.learning_rate"] == "0.01" and params["inputs.features.type"] == "table"
    assert params["outputs.price.type"] == "number"
    assert steps(client(), run_id) == [1, 2, 3]
    assert steps(client(), run_id, "valid.mae") == [1, 2, 3, 3]  # each epoch's, then the best epoch's at the last step
    assert metrics["test.mae"] == pytest.approx(run.metrics["test"]["mae"])
    assert metrics["valid.loss"] == pytest.approx(run.metrics["valid"]["loss"])  # the final value is the latest
    assert tags["deepstation.run_dir"] == str(run.dir.resolve()) and tags["deepstation.kind"] == "train"
    assert tags["mlflow.user"] and tags["deepstation.host"] and tags["deepstation.version"] == deepstation.__version__
    assert tags["usage.device_kind"] == "cpu" and int(tags["usage.device_count"]) >= 1
    count = int(tags["usage.device_count"])  # both are kept to the millisecond: allow that rounding per device
    assert metrics["usage.device_seconds"] == pytest.approx(metrics["usage.wall_seconds"] * count, abs=1e-3 * count)
    assert metrics["usage.cost_usd"] > 0
    names = {a.path for path in (None, "model") for a in client().list_artifacts(run_id, path)}
    assert {"config.yaml", "summary.json", "environment.json", "model/best.pt", "model/preprocess.json",
            "model/config.yaml", "model/summary.json"} <= names
    cursor = json.loads((run.dir / "tracking.json").read_text())
    assert cursor["run_id"] == run_id and cursor["sent_lines"] == 3 and cursor["finished"]
    assert cursor["usage"]["device_kind"] == "cpu" and cursor["usage"]["cost_usd"] > 0
    assert "mlflow" not in {p.name for p in Path.cwd().iterdir()} and not (ROOT / "mlflow.db").exists()


def test_train_json_gives_the_tracking_run_id_and_no_track_gives_null(table_csv):
    task = write_task(table_csv.parent, table_task(table_csv, epochs=1))
    tracked = last_json(cli("train", task, "--json", "--quiet", check=0).stdout)
    assert client().get_run(tracked["tracking_run_id"]).info.status == "FINISHED"
    untracked = last_json(cli("train", task, "--json", "--quiet", "--no-track", check=0).stdout)
    assert untracked["tracking_run_id"] is None
    assert not (Path(untracked["run_dir"]) / "tracking.json").exists()


def test_a_run_in_a_git_repository_records_the_commit(table_csv, tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "start"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    run = deepstation.train(task_in("git", table_csv, epochs=1))
    assert client().get_run(run.summary["tracking_run_id"]).data.tags["mlflow.source.git.commit"] == head


def test_params_are_masked_and_cut_to_mlflows_limit(table_csv):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    from deepstation.config import load_task
    from deepstation.track.tracker import params_of

    raw = table_task(table_csv)
    raw["tracking"] = {"uri": "postgresql://team:s3cret@db.example:5432/mlflow", "experiment": "x" * 7000}
    params = params_of(load_task(raw))
    assert params["tracking.uri"] == "postgresql://team:***@db.example:5432/mlflow"
    cut = params["tracking.experiment"]
    assert len(cut) == MAX_PARAM_VAL_LENGTH and cut.endswith("(cut)")
    assert all("s3cret" not in v for v in params.values())


def test_the_environment_snapshot_falls_back_to_a_minimal_one(monkeypatch):
    from deepstation.track import tracker

    tracker._environment.cache_clear()
    monkeypatch.setitem(sys.modules, "deepstation.workstation.envsnap", None)  # not written yet
    try:
        found = tracker.environment()
    finally:
        tracker._environment.cache_clear()
    assert found["python"] and found["platform"] and found["torch"]


def test_resume_continues_the_same_mlflow_run(table_csv, every_epoch, monkeypatch):
    raw = task_in("resumed", table_csv, epochs=5, checkpoint_every=0)  # a checkpoint every epoch
    real = RunFolder.save_checkpoint

    def save_then_stop(self, state):
        real(self, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(RunFolder, "save_checkpoint", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            deepstation.train(raw)
    run_dir = next((table_csv.parent / "runs").iterdir())
    run_id = json.loads((run_dir / "tracking.json").read_text())["run_id"]
    assert client().get_run(run_id).info.status == "KILLED"
    run = deepstation.train(None, resume=run_dir)
    assert run.summary["tracking_run_id"] == run_id
    assert client().get_run(run_id).info.status == "FINISHED"
    assert steps(client(), run_id) == [1, 2, 3, 4, 5]


def test_a_diverging_run_is_failed_in_the_store(table_csv, monkeypatch):
    from deepstation.models.assemble import TaskModel

    real = TaskModel.loss
    monkeypatch.setattr(TaskModel, "loss", lambda self, out, y: real(self, out, y) * float("nan"))
    result = cli("train", write_task(table_csv.parent, task_in("diverging", table_csv)))
    assert result.returncode == 1
    run_dir = next((table_csv.parent / "runs").iterdir())
    run_id = json.loads((run_dir / "tracking.json").read_text())["run_id"]
    assert client().get_run(run_id).info.status == "FAILED"


# -- compare, evaluate -------------------------------------------------------------------------------------


def test_compare_logs_the_baseline_and_report_to_the_deep_run(table_csv):
    from deepstation.compare import compare

    result = compare(task_in("compared", table_csv, epochs=2))
    run_id = json.loads((Path(result["deep"]["run_dir"]) / "tracking.json").read_text())["run_id"]
    got = client().get_run(run_id)
    assert got.data.metrics["baseline.test.mae"] == pytest.approx(result["baseline"]["metrics"]["test"]["mae"])
    assert "test.mae" in got.data.metrics
    assert {"report.html", "compare.json"} <= {a.path for a in client().list_artifacts(run_id)}


def test_evaluate_logs_an_evaluation_run(table_csv):
    run = deepstation.train(task_in("evaluated", table_csv, epochs=1))
    out = last_json(cli("evaluate", run.dir, "--json", "--device", "cpu", check=0).stdout)
    got = client().get_run(out["tracking_run_id"])
    assert got.data.tags["deepstation.kind"] == "evaluate" and got.info.status == "FINISHED"
    assert got.data.tags["deepstation.evaluated_run"] == run.summary["tracking_run_id"]
    assert got.data.params["source"] == str(table_csv)
    assert got.data.metrics["test.mae"] == pytest.approx(out["metrics"]["test"]["mae"])
    assert last_json(cli("evaluate", run.dir, "--json", "--no-track", check=0).stdout)["tracking_run_id"] is None


# -- runs, usage, register -------------------------------------------------------------------------------


def test_runs_list_show_and_compare(table_csv):
    a = deepstation.train(task_in("listed", table_csv, epochs=1))
    b = deepstation.train(task_in("listed", table_csv, epochs=2))
    rows = last_json(cli("runs", "list", "--experiment", "listed", "--json", check=0).stdout)
    assert [r["run"] for r in rows] == [b.id, a.id]  # newest first
    row = rows[0]
    assert row["status"] == "FINISHED" and row["task"] == "tiny" and row["run_dir"] == str(b.dir.resolve())
    assert row["metrics"]["test.mae"] == pytest.approx(b.metrics["test"]["mae"])
    assert row["device"] == "cpu" and row["cost_usd"] > 0 and row["user"] and row["duration_s"] > 0
    assert len(last_json(cli("runs", "list", "--experiment", "listed", "--limit", "1", "--json", check=0).stdout)) == 1
    shown = cli("runs", "show", b.summary["tracking_run_id"][:10], check=0)
    assert b.id in shown.stdout and "trainer.epochs = 2" in shown.stdout
    assert last_json(cli("runs", "show", str(a.dir), "--json", check=0).stdout)["tracking_id"] == \
        a.summary["tracking_run_id"]
    assert last_json(cli("runs", "show", a.id, "--json", check=0).stdout)["tracking_id"] == a.summary["tracking_run_id"]
    both = last_json(cli("runs", "compare", a.id, b.id, "--json", check=0).stdout)
    assert both["params"]["trainer.epochs"] == ["1", "2"] and "test.mae" in both["metrics"]
    assert "no such experiment" in user_error(cli("runs", "list", "--experiment", "listd"))
    assert "no run with that id" in user_error(cli("runs", "show", "zzzz"))


def test_usage_sums_by_project_with_a_rates_file(table_csv, tmp_path):
    (tmp_path / "rates.yaml").write_text("cpu: 3600\n")  # one dollar per CPU-thread-second
    deepstation.train(task_in("metered", table_csv, epochs=1))
    deepstation.train(task_in("metered", table_csv, epochs=1))
    rows = last_json(cli("usage", "--by", "project", "--json", check=0).stdout)
    row = next(r for r in rows if r["project"] == "metered")
    assert row["runs"] == 2 and row["cost_usd"] == pytest.approx(row["device_hours"] * 3600, rel=1e-2)
    for by in ("user", "device", "month"):
        assert last_json(cli("usage", "--by", by, "--since", "2000-01-01", "--json", check=0).stdout)
    assert last_json(cli("usage", "--since", "2999-01-01", "--json", check=0).stdout) == []
    assert "YYYY-MM-DD" in user_error(cli("usage", "--since", "last week"))


def test_rates_match_gpu_names_and_a_file_overrides_them(tmp_path, monkeypatch):
    from unittest import mock

    from deepstation.errors import DeepstationError
    from deepstation.track.rates import DEFAULT_RATES, rate_for, rates
    from deepstation.track.usage import device_of, measure

    assert rate_for("NVIDIA H100 80GB HBM3") == DEFAULT_RATES["H100"]
    assert rate_for("Tesla T4") == DEFAULT_RATES["T4"] and rate_for("NVIDIA H200") == DEFAULT_RATES["H200"]
    assert rate_for("Z100 prototype") is None and measure(10, "Z100", 1)["cost_usd"] is None
    with mock.patch("torch.cuda.get_device_name", return_value="NVIDIA A100-SXM4-40GB"):
        assert device_of("cuda:0", workers=4, gpus_per_worker=2) == ("NVIDIA A100-SXM4-40GB", 8)
    used = measure(3600, "NVIDIA A100-SXM4-40GB", 8)
    assert used["device_seconds"] == 8 * 3600 and used["cost_usd"] == pytest.approx(8 * DEFAULT_RATES["A100"])
    from deepstation.track.tracker import _usage

    (tmp_path / "summary.json").write_text(json.dumps({"device": "cuda:0", "scale": {
        "workers": 4, "gpus_per_worker": 1, "worker_device": "cuda:0"}}))
    with mock.patch("torch.cuda.get_device_name", return_value="NVIDIA H100 80GB HBM3"):
        scaled = _usage(tmp_path, 1800, "cpu", None)  # a Ray run: four workers of one GPU, half an hour
    assert (scaled["device_kind"], scaled["device_count"]) == ("NVIDIA H100 80GB HBM3", 4)
    assert scaled["device_seconds"] == 4 * 1800
    assert scaled["cost_usd"] == pytest.approx(2 * DEFAULT_RATES["H100"])
    (tmp_path / "rates.yaml").write_text("H100: 2.49\nZ100: 1\n")
    assert rates()["H100"] == 2.49 and rate_for("Z100 prototype") == 1.0
    (tmp_path / "rates.yaml").write_text("H100: cheap\n")
    with pytest.raises(DeepstationError, match="dollars per hour"):
        rates()


def test_register_then_predict_and_load_from_models_uri(table_csv, tmp_path):
    import pandas as pd

    run = deepstation.train(task_in("registered", table_csv, epochs=1))
    first = last_json(cli("register", run.id, "tiny-price", "--json", check=0).stdout)
    second = last_json(cli("register", run.summary["tracking_run_id"], "tiny-price", "--json", check=0).stdout)
    assert (first["version"], second["version"]) == (1, 2) and first["uri"] == "models:/tiny-price/1"
    rows = pd.read_csv(table_csv).drop(columns=["price", "kind"]).head(5)
    rows.to_csv(tmp_path / "new.csv", index=False)
    direct = cli("predict", run.dir, tmp_path / "new.csv", check=0).stdout
    assert cli("predict", "models:/tiny-price/1", tmp_path / "new.csv", check=0).stdout == direct
    assert cli("predict", "models:/tiny-price/latest", tmp_path / "new.csv", check=0).stdout == direct
    assert (tmp_path / "cache" / "models" / "tiny-price" / "2" / "best.pt").is_file()
    loaded = deepstation.load("models:/tiny-price/1")
    assert loaded.metrics == run.metrics
    assert "no version 9" in user_error(cli("predict", "models:/tiny-price/9", tmp_path / "new.csv"))
    assert "models:/NAME/VERSION" in user_error(cli("predict", "models:/tiny-price", tmp_path / "new.csv"))


# -- faults ----------------------------------------------------------------------------------------------


def test_store_unreachable_at_start_is_one_clear_line_before_training(table_csv, monkeypatch):
    from pgserver import free_port

    url = f"postgresql+psycopg://team:s3cret@127.0.0.1:{free_port()}/mlflow"
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", url)
    began = time.monotonic()
    line = user_error(cli("train", write_task(table_csv.parent, table_task(table_csv))))
    assert time.monotonic() - began < 30
    assert "postgresql+psycopg://team:***@127.0.0.1" in line and "--no-track" in line and "s3cret" not in line
    assert not (table_csv.parent / "runs").exists()  # nothing trained, no run folder
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", f"sqlite:///{table_csv.parent}/missing/folder/mlflow.db")
    assert "does not exist" in user_error(cli("train", write_task(table_csv.parent, table_task(table_csv))))


class Outage:
    """An injected store failure: every call to the store raises while `down` is set."""

    def __init__(self, monkeypatch):
        from deepstation.track.store import Store

        self.down, self.failed, real = False, 0, Store.call

        def call(store, method, *args, **kwargs):
            if self.down:
                self.failed += 1
                raise ConnectionError("connection refused (injected outage)")
            return real(store, method, *args, **kwargs)

        monkeypatch.setattr(Store, "call", call)

    def during_epochs(self, monkeypatch, first: int, last: int | None):
        """Down from epoch `first`'s line; back at epoch `last`'s once a send has met the outage. The tracker sends
        from a thread of its own, which may not have tried yet on a busy machine: the loop then asks it again and
        waits, so the call that meets the outage is a mid-run send, never the end of the run's."""
        from deepstation.track.tracker import Tracker

        real, outage, real_sync = RunFolder.append_metrics, self, Tracker.sync
        trackers = []

        def sync(tracker):
            trackers.append(tracker)
            return real_sync(tracker)

        def append(folder, record):
            real(folder, record)
            if record["epoch"] == first:
                outage.down = True
            if last is not None and record["epoch"] == last:
                deadline = time.monotonic() + 60
                while not outage.failed and time.monotonic() < deadline:
                    trackers[-1].sync()
                    time.sleep(0.02)
                assert outage.failed, "no send met the outage in 60 s"
                outage.down = False

        monkeypatch.setattr(Tracker, "sync", sync)
        monkeypatch.setattr(RunFolder, "append_metrics", append)


def test_store_lost_mid_run_training_goes_on_and_the_metrics_follow(table_csv, every_epoch, monkeypatch, capsys):
    outage = Outage(monkeypatch)
    outage.during_epochs(monkeypatch, first=2, last=4)  # down after epoch 2's line, back after epoch 4's
    run = deepstation.train(task_in("outage", table_csv, epochs=6))
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "metrics.jsonl" in warnings[0]
    assert steps(client(), run.summary["tracking_run_id"]) == [1, 2, 3, 4, 5, 6]
    assert client().get_run(run.summary["tracking_run_id"]).info.status == "FINISHED"


@pytest.mark.parametrize("how", ["runs sync", "runs list"])
def test_store_still_away_at_the_end_then_sync_sends_the_rest(table_csv, every_epoch, monkeypatch, capsys, how):
    outage = Outage(monkeypatch)
    outage.during_epochs(monkeypatch, first=1, last=None)  # down from epoch 1's line to the end
    experiment = f"away-{how.split()[1]}"
    run = deepstation.train(task_in(experiment, table_csv, epochs=4))
    assert "runs sync" in capsys.readouterr().err
    run_id = run.summary["tracking_run_id"]
    outage.down = False
    assert client().get_run(run_id).info.status == "RUNNING" and steps(client(), run_id) == []
    cursor = json.loads((run.dir / "tracking.json").read_text())
    assert not cursor["finished"] and cursor["sent_lines"] == 0 and cursor["usage"]["wall_seconds"] > 0
    if how == "runs sync":
        assert "synced" in cli("runs", "sync", run.dir, check=0).stdout
    else:
        row = last_json(cli("runs", "list", "--experiment", experiment, "--json", check=0).stdout)[0]
        assert row["status"] == "FINISHED" and "test.mae" in row["metrics"]
    assert client().get_run(run_id).info.status == "FINISHED" and steps(client(), run_id) == [1, 2, 3, 4]
    assert "test.mae" in client().get_run(run_id).data.metrics
    assert "up to date" in cli("runs", "sync", run.dir, check=0).stdout


class Locked:
    """The SQLite store held in an exclusive transaction by another connection, as another process would hold it,
    from the moment the loop has written a given epoch's line (before that epoch is sent); store calls made on
    the loop's thread while it is held are recorded."""

    def __init__(self, db: Path, monkeypatch):
        import sqlite3

        from deepstation.track.store import Store

        self.conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
        self.held, self.loop, self.loop_calls = False, None, []
        real = Store.call

        def call(store, method, *args, **kwargs):
            if self.held and threading.current_thread() is self.loop:
                self.loop_calls.append(method)
            return real(store, method, *args, **kwargs)

        monkeypatch.setattr(Store, "call", call)

    def from_epoch(self, monkeypatch, epoch: int) -> None:
        real, locked = RunFolder.append_metrics, self

        def append(folder, record):
            real(folder, record)
            locked.loop = threading.current_thread()
            if record["epoch"] == epoch:
                locked.hold()

        monkeypatch.setattr(RunFolder, "append_metrics", append)

    def hold(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.conn.execute("ROLLBACK")


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A store of its own (locking the session's would stall other tests), held by `Locked`; released at the end."""
    db = tmp_path / "locked.db"
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", f"sqlite:///{db}")
    lock = Locked(db, monkeypatch)
    yield lock
    lock.release()
    lock.conn.close()


def test_a_locked_store_makes_the_tracker_buffer_never_the_loop_wait(table_csv, every_epoch, locked, monkeypatch,
                                                                    capsys):
    from deepstation.track.tracker import Tracker, _complete_lines

    monkeypatch.setattr(Tracker, "SLOW_S", 0.0)  # the next epoch finds epoch 1's send, stuck on the lock, slow
    locked.from_epoch(monkeypatch, 1)
    real, seen = Tracker.finish, {}

    def finish(tracker, status):  # the loop is over: what it did under the lock, then the lock goes
        seen["lines"] = len(_complete_lines(tracker.folder.metrics))
        seen["sent"] = json.loads((tracker.folder.path / "tracking.json").read_text())["sent_lines"]
        seen["held"] = locked.held
        locked.release()
        real(tracker, status)

    monkeypatch.setattr(Tracker, "finish", finish)
    run = deepstation.train(task_in("locked", table_csv, epochs=6))
    assert seen == {"lines": 6, "sent": seen["sent"], "held": True} and seen["sent"] <= 1  # six epochs, lock held
    assert locked.loop_calls == []  # the loop's thread never called the store while it was locked
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "slow to answer" in warnings[0] and "metrics.jsonl" in warnings[0]
    run_id = run.summary["tracking_run_id"]
    assert client().get_run(run_id).info.status == "FINISHED"
    assert steps(client(), run_id) == [1, 2, 3, 4, 5, 6]  # the buffered epochs, each sent once
    assert json.loads((run.dir / "tracking.json").read_text())["finished"]


def test_a_store_still_locked_at_the_end_is_left_to_runs_sync(table_csv, every_epoch, locked, monkeypatch,
                                                              capsys):
    from deepstation.track.tracker import Tracker

    monkeypatch.setattr(Tracker, "FINISH_WAIT_S", 0.2)  # the send in flight outlasts finish's wait
    locked.from_epoch(monkeypatch, 1)
    run = deepstation.train(task_in("locked-end", table_csv, epochs=3))
    assert locked.loop_calls == [] and "runs sync" in capsys.readouterr().err
    cursor = json.loads((run.dir / "tracking.json").read_text())
    assert not cursor["finished"] and cursor["status"] == "FINISHED" and cursor["usage"]["wall_seconds"] > 0
    locked.release()
    for sender in [t for t in threading.enumerate() if t.name == "deepstation-tracking"]:
        sender.join(timeout=60)  # its send goes through, then it ends (a process that exits ends it sooner)
        assert not sender.is_alive()
    assert "synced" in cli("runs", "sync", run.dir, check=0).stdout
    run_id = run.summary["tracking_run_id"]
    assert client().get_run(run_id).info.status == "FINISHED"
    assert steps(client(), run_id) == [1, 2, 3]  # the sender's lines and sync's, none twice
    assert "test.mae" in client().get_run(run_id).data.metrics


def concurrent_runs(uri: str, experiment: str, tmp_path, n_runs=8, epochs=20) -> list:
    """n_runs trackers writing to one store at once from threads, each epoch sent at once; their run ids."""
    from deepstation.config import load_task
    from deepstation.track.tracker import Tracker
    from deepstation.track.store import Store

    raw = task_in(experiment, tmp_path / "unused.csv")
    raw["tracking"]["uri"] = uri
    task = load_task(raw)
    barrier, ids, errors = threading.Barrier(n_runs), [None] * n_runs, []

    def one(i):
        try:
            store = Store(uri)  # a client of its own
            store.probe()
            tracker = Tracker(store, task)
            tracker.SYNC_EVERY_S = 0.0
            folder = RunFolder.create(tmp_path / "runs", f"concurrent{i}")
            barrier.wait()
            tracker.start(task, folder, "cpu")
            store = tracker.wrap(folder)
            for epoch in range(1, epochs + 1):
                store.append_metrics({"epoch": epoch, "lr": 0.1, "train": {"loss": 1.0 / epoch},
                                      "valid": {"loss": 2.0 / epoch, "mae": float(i)}})
            folder.write_info(status="completed")
            tracker.finish("FINISHED")
            ids[i] = tracker.run_id
        except BaseException as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n_runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    return ids


def test_eight_runs_at_once_lose_no_metric_sqlite(tmp_path, capsys):
    uri = os.environ["DEEPSTATION_TRACKING_URI"]  # the session's SQLite file, with every other test's runs
    assert_every_epoch_arrived(uri, concurrent_runs(uri, "eight", tmp_path))
    assert "warning" not in capsys.readouterr().err  # no run lost the store: "database is locked" is retried


def assert_every_epoch_arrived(uri, ids, epochs: int = 20) -> None:
    c = client(uri)
    for run_id in ids:
        assert c.get_run(run_id).info.status == "FINISHED"
        for key in ("train.loss", "valid.loss", "valid.mae", "lr"):
            assert steps(c, run_id, key) == list(range(1, epochs + 1))


CONCURRENT_RUN = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_track import concurrent_runs
concurrent_runs({uri!r}, "eight-processes", Path({tmp!r}), n_runs=1)
"""


@pytest.mark.slow
def test_eight_processes_on_one_new_sqlite_file_lose_no_metric(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"  # a new file: the eight also race to create MLflow's tables
    procs = []
    for i in range(8):
        script = CONCURRENT_RUN.format(tests=str(ROOT / "tests"), uri=uri, tmp=str(tmp_path / f"p{i}"))
        procs.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    c = client(uri)
    runs = c.search_runs([c.get_experiment_by_name("eight-processes").experiment_id])
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert steps(c, run.info.run_id, "valid.loss") == list(range(1, 21))
    assert not any("warning" in out for out in outputs)


def test_clients_creating_one_experiment_at_once_all_get_it(tmp_path):
    import uuid

    from deepstation.track.store import Store, connect

    uri = os.environ["DEEPSTATION_TRACKING_URI"]
    connect(uri)  # the tables, once
    found, barrier, name = [], threading.Barrier(6), f"raced-{uuid.uuid4().hex[:8]}"

    def one():
        store = Store(uri)  # each its own experiment cache
        barrier.wait()
        found.append(store.experiment_id(name))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(found) == 6 and len(set(found)) == 1


KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
import deepstation
from conftest import table_task
raw = table_task({csv!r}, epochs=100000)
raw["tracking"] = {{"experiment": "sigkilled"}}
deepstation.train(raw)
"""


def test_a_run_killed_with_sigkill_shows_as_killed_on_the_next_list(table_csv, tmp_path):
    script = KILLED_RUN.format(tests=str(ROOT / "tests"), csv=str(table_csv))
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 120
    try:
        while not any(runs.glob("*/metrics.jsonl")) or not any(runs.glob("*/tracking.json")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run did not start within 120 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    run_dir = next(runs.iterdir())
    run_id = json.loads((run_dir / "tracking.json").read_text())["run_id"]
    assert client().get_run(run_id).info.status == "RUNNING"
    row = last_json(cli("runs", "list", "--experiment", "sigkilled", "--json", check=0).stdout)[0]
    assert row["tracking_id"] == run_id and row["status"] == "KILLED"
    assert steps(client(), run_id)  # the epochs it did are in the store


# -- the verbs' start-up ---------------------------------------------------------------------------------


def test_mlflow_is_imported_only_when_tracking():
    code = ("import sys\nfrom deepstation.cli import main\nimport deepstation.run, deepstation.compare\n"
            "for verb in ('runs', 'ui', 'register', 'usage'):\n    try:\n        main([verb, '--help'])\n"
            "    except SystemExit:\n        pass\nprint('MLFLOW' if 'mlflow' in sys.modules else 'NO-MLFLOW')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().endswith("NO-MLFLOW")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _processes_with(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_ui_starts_answers_and_leaves_no_process(tmp_path):
    from pgserver import free_port

    port = free_port()
    result = cli("ui", "--port", port, "--check", check=0)
    assert result.stdout.strip() == f"http://127.0.0.1:{port}"
    assert not _listening(port) and not _processes_with(f"--port {port} ")


@pytest.mark.slow
def test_ui_stops_cleanly_on_sigterm(tmp_path):
    from pgserver import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "deepstation", "ui", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}"  # printed once /health answers
        assert _listening(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert not _listening(port) and not _processes_with(f"--port {port} ")
