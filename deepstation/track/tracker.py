"""A run folder tracked in MLflow. The folder is the source of truth and the buffer:

  metrics.jsonl   every epoch, written by the training loop whether the store is up or not
  tracking.json   the cursor: {uri (masked), run_id, experiment, sent_lines, finished, status, usage, extra}

After each epoch (the loop's store is wrapped: `append_metrics` writes the folder's line, then asks for the lines
the store has not had to be sent) and at the end, the lines past `sent_lines` go to the store in one log_batch.
The sending is done by one background thread per run, one send at a time: the training loop never waits on the
store. A store that answers slowly (SQLite locked by another process, a far server) or not at all costs one
warning line: training goes on, the lines wait in the folder and go when the store answers, at a later epoch or
at the end; if it is still away at the end, `deepstation runs sync` (or the next `deepstation runs list`) sends
the rest and closes the run. Nothing a run learns lives only in the store.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError
from deepstation.track.store import Store, StoreUnreachable, brief, connect
from deepstation.track.uri import masked, tracking_uri

CURSOR = "tracking.json"
MODEL_FILES = ("config.yaml", "preprocess.json", "best.pt", "summary.json", "run.json")
STATUS_OF_FOLDER = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "killed": "KILLED"}
_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


def open_store(task, enabled: bool = True) -> Store | None:
    """The task's store, reached now; None when tracking is off. Unreachable: a one-line error naming the
    masked URI and how to go on without it."""
    if not (enabled and task.tracking.enabled):
        return None
    try:
        return connect(tracking_uri(task.tracking.uri))
    except StoreUnreachable as err:
        raise StoreUnreachable(f"{err}; start it, point tracking.uri or $DEEPSTATION_TRACKING_URI at another "
                               f"store, or run with --no-track") from err


class Tracker:
    """One training run's link to its MLflow run: start(), wrap() the loop's store, finish()."""

    SYNC_EVERY_S = 1.0  # epochs shorter than this are sent together: one store write a second at most
    SLOW_S = 5.0  # a send that takes longer than this is worth one warning line
    FINISH_WAIT_S = 60.0  # at the end, how long to wait for the send in flight before leaving it to `runs sync`

    def __init__(self, store: Store, task):
        self.store, self.task = store, task
        self.folder = self.cursor = None
        self._began = time.monotonic()
        self._warned = False
        self._retry_at = self._synced_at = 0.0
        # the sender: one thread, one send at a time. `_lock` guards the cursor (its changes and its file) and the
        # fields below; a send's store calls run outside it, so the training thread never waits on the store
        self._lock = threading.Condition()
        self._sender: threading.Thread | None = None
        self._asked = self._closed = False
        self._busy_since: float | None = None  # when the send in flight was asked for; None when idle

    @classmethod
    def connect(cls, task) -> "Tracker | None":
        store = open_store(task)
        return cls(store, task) if store is not None else None

    @property
    def run_id(self) -> str | None:
        return self.cursor["run_id"] if self.cursor else None

    def start(self, task, folder, device: str, resume: bool = False) -> None:
        """Create the MLflow run (or, on resume, reopen the folder's own) and log params, tags, environment. `task`:
        the task as the run's config.yaml keeps it (column patterns expanded), whose params are logged."""
        self.task, self.folder, self.device, self._began = task, folder, device, time.monotonic()
        cursor = read_cursor(folder.path)
        params = params_of(self.task)
        try:
            run = None
            if resume and cursor and cursor.get("uri") == self.store.shown:
                try:
                    run = self.store.call("get_run", cursor["run_id"])
                except Exception:  # deleted from the store meanwhile: a new run takes its place
                    run = None
            if run is not None:
                self.store.call("update_run", run.info.run_id, status="RUNNING")
                self.store.call("set_tag", run.info.run_id, "deepstation.pid", str(os.getpid()))
                params = {k: v for k, v in params.items() if k not in run.data.params}  # a param never changes
                lines = len(_complete_lines(folder.metrics))  # a resume drops lines past the checkpoint
                self.cursor = {**cursor, "sent_lines": min(cursor.get("sent_lines", 0), lines), "finished": False}
            else:
                experiment = self.task.tracking.experiment or self.task.name
                run = self.store.call("create_run", self.store.experiment_id(experiment), start_time=_ms(),
                                      tags=self._tags(folder), run_name=folder.path.name)
                self.cursor = {"uri": self.store.shown, "run_id": run.info.run_id, "experiment": experiment,
                               "sent_lines": 0, "finished": False, "wall_seconds": 0.0}
            self._save()
            _log_batch(self.store, self.run_id, params=params)
            if "environment" not in self.cursor:
                self.store.call("log_dict", self.run_id, environment(), "environment.json")
                self.cursor["environment"] = True
                self._save()
        except StoreUnreachable:
            raise
        except Exception as err:
            raise StoreUnreachable(f"tracking store {self.store.shown}: could not start the run ({brief(err)}); "
                                   f"run with --no-track to train without it") from err
        self.sync()

    def wrap(self, store) -> "TrackedStore":
        return TrackedStore(store, self)

    def sync(self) -> bool:
        """Ask the sender to send the lines of metrics.jsonl the store has not had; returns at once. False when
        nothing was asked: too soon after the last send, a failed store not yet due again, or a send still in
        flight (the lines wait in the folder for the next one)."""
        now = time.monotonic()
        with self._lock:
            if self._closed or self.cursor is None:
                return False
            if self._busy_since is not None:
                if now - self._busy_since > self.SLOW_S:
                    self._slow(now - self._busy_since)
                return False
            if now < max(self._retry_at, self._synced_at + self.SYNC_EVERY_S):
                return False
            self._asked, self._busy_since = True, now
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="deepstation-tracking", daemon=True)
                self._sender.start()
            self._lock.notify_all()
        return True

    def finish(self, status: str) -> None:
        """Close the MLflow run: FINISHED (with final metrics, usage and artifacts), FAILED or KILLED. Waits for a
        send in flight (FINISH_WAIT_S at most), then sends the rest on this thread. A store still away, or still
        busy with that send, leaves the rest in tracking.json for `deepstation runs sync`."""
        with self._lock:
            self._closed, self._asked = True, False  # the sender takes no new send and ends after its own
            self._lock.notify_all()
            if self.cursor is None:
                return
            self._lock.wait_for(lambda: self._busy_since is None, timeout=self.FINISH_WAIT_S)
            busy = self._busy_since is not None
            self.cursor["wall_seconds"] = self.cursor.get("wall_seconds", 0.0) + time.monotonic() - self._began
            self.cursor["status"] = status
            self.cursor["usage"] = _usage(self.folder.path, self.cursor["wall_seconds"], self.device, self.task)
            self._save()
        try:
            if busy:  # the sender still owns the lines past `sent_lines`: sending them here too would repeat them
                raise TimeoutError(f"a send took over {self.FINISH_WAIT_S:.0f} s")
            push_final(self.store, self.folder.path, self.cursor)  # the sender is done: the cursor is this thread's
        except Exception as err:
            with self._lock:
                self._lost(err, 0.0, force=True)
            print(f"warning: tracking store {self.store.shown} unreachable at the end of the run; it is kept in "
                  f"{self.folder.path / CURSOR}: `deepstation runs sync {self.folder.path}` sends the rest",
                  file=sys.stderr)

    def _send_loop(self) -> None:
        """The sender thread: one send per request, until finish()."""
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._asked or self._closed)
                if not self._asked:
                    self._busy_since = None
                    self._lock.notify_all()
                    return
                self._asked = False
                began = self._busy_since
                run_id, sent = self.cursor["run_id"], self.cursor.get("sent_lines", 0)
            try:
                lines = _complete_lines(self.folder.metrics)
                _post_lines(self.store, run_id, lines[min(sent, len(lines)):])
            except Exception as err:
                with self._lock:
                    self._lost(err, time.monotonic() - began)
                    self._busy_since = None
                    self._lock.notify_all()
                continue
            with self._lock:
                if len(lines) > self.cursor.get("sent_lines", 0):
                    self.cursor["sent_lines"] = len(lines)
                    self._save()
                    if time.monotonic() - began > self.SLOW_S:
                        self._slow(time.monotonic() - began)
                self._retry_at, self._synced_at, self._busy_since = 0.0, time.monotonic(), None
                self._lock.notify_all()

    def _slow(self, seconds: float) -> None:
        if not self._warned:
            print(f"warning: tracking store {self.store.shown} is slow to answer (one send has taken {seconds:.1f} s); "
                  f"training goes on, metrics wait in {self.folder.metrics} and are sent when it answers",
                  file=sys.stderr)
        self._warned = True

    def _lost(self, err, seconds: float, force: bool = False) -> None:
        if not self._warned and not force:
            print(f"warning: tracking store {self.store.shown} unreachable ({brief(err)}); training goes on, "
                  f"metrics wait in {self.folder.metrics} and are sent when it is back", file=sys.stderr)
        self._warned = True
        # a store that fails at once is tried again next epoch; one that hangs until a timeout, less often
        self._retry_at = time.monotonic() + (10 * seconds if seconds > 0.5 else 0.0)

    def _save(self) -> None:
        write_cursor(self.folder.path, self.cursor)

    def _tags(self, folder) -> dict:
        from deepstation import __version__

        tags = {"mlflow.user": user(), "mlflow.source.name": "deepstation train", "mlflow.source.type": "LOCAL",
                "deepstation.kind": "train", "deepstation.host": socket.gethostname(),
                "deepstation.pid": str(os.getpid()),
                "deepstation.run": folder.path.name, "deepstation.run_dir": str(folder.path.resolve()),
                "deepstation.task": self.task.name, "deepstation.monitor": self.task.trainer.monitor,
                "deepstation.version": __version__}
        commit = git_commit(str(Path.cwd()))
        if commit:
            tags["mlflow.source.git.commit"] = commit
        return tags


class TrackedStore:
    """The training loop's store, asking for a send after each epoch's line; every other method is the folder's.
    Pickled (for a worker process), it is the plain folder store: the driver sends what the workers wrote."""

    def __init__(self, store, tracker: Tracker):
        self._store, self._tracker = store, tracker

    def append_metrics(self, record: dict) -> None:
        self._store.append_metrics(record)
        self._tracker.sync()

    def sync(self) -> bool:
        """For the Ray driver: rank 0 appends in a worker, the driver sends each epoch's line from the folder."""
        return self._tracker.sync()

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __reduce__(self):
        return (_identity, (self._store,))


def _identity(store):
    return store


# -- what is sent ----------------------------------------------------------------------------------------


def push_final(store: Store, folder: Path, cursor: dict) -> None:
    """Everything the run has not sent, then its status; safe to repeat after a failure part way."""
    _send_lines(store, folder, cursor)
    run_id = cursor["run_id"]
    summary = files.read_json(folder / "summary.json") if (folder / "summary.json").is_file() else None
    metrics, tags = {}, {}
    if summary is not None:
        for split in ("test", "valid"):
            for name, value in (summary.get("metrics", {}).get(split) or {}).items():
                metrics[f"{split}.{name}"] = value
    usage = cursor.get("usage")
    if usage:
        from deepstation.track import usage as metering

        metrics.update(metering.as_metrics(usage))
        tags.update(metering.as_tags(usage))
    # the final values at the last epoch's step: MLflow's latest value of valid.* is then the best epoch's
    _log_batch(store, run_id, metrics=metrics, step=int((summary or {}).get("epochs") or 0), tags=tags)
    if not cursor.get("artifacts_sent"):
        for name in ("config.yaml", "summary.json"):
            if (folder / name).is_file():
                store.call("log_artifact", run_id, str(folder / name))
        if summary is not None:  # the model, for `deepstation register` and MLflow's own tools
            log_model(store, run_id, folder)
        cursor["artifacts_sent"] = True
        write_cursor(folder, cursor)
    _push_extra(store, folder, cursor)
    store.call("set_terminated", run_id, cursor.get("status", "FINISHED"))
    cursor["finished"] = True
    write_cursor(folder, cursor)


def log_model(store: Store, run_id: str, folder: Path) -> None:
    """The run's model as `model/`: the run files Run.load reads (MODEL_FILES) and, beside them, what makes the folder
    an MLflow pyfunc model (deepstation.serve.pyfunc: MLmodel, input example, requirements). Should the pyfunc part
    fail (an MLflow that refuses it), the run files alone, with a warning: `deepstation register` and `predict
    models:/` read either, MLflow's own load_model and `models serve` only the first. Adds about half a second to a
    small run's end (loading the model once more to predict its input example, on the CPU)."""
    try:
        from deepstation.serve.pyfunc import log_model as log_pyfunc

        log_pyfunc(store, run_id, folder)
        return
    except StoreUnreachable:
        raise
    except Exception as err:
        print(f"warning: the run's model was not logged as an MLflow pyfunc model ({brief(err)}); its files are "
              f"logged as model/ instead, for `deepstation register` and `deepstation predict models:/`",
              file=sys.stderr)
    for name in MODEL_FILES:
        if (folder / name).is_file():
            store.call("log_artifact", run_id, str(folder / name), "model")


def log_extra(run_dir, metrics: dict, artifacts=()) -> str | None:
    """Add metrics (at step 0) and files to a tracked run folder's MLflow run, such as compare's baseline and
    report. Kept in tracking.json until sent. Returns the run id, or None for a folder not tracked."""
    folder = Path(run_dir)
    cursor = read_cursor(folder)
    if not cursor:
        return None
    extra = cursor.setdefault("extra", {"metrics": {}, "artifacts": []})
    extra["metrics"].update({k: v for k, v in metrics.items() if v is not None})
    extra["artifacts"] += [str(Path(a).resolve()) for a in artifacts if str(Path(a).resolve()) not in
                           extra["artifacts"]]
    write_cursor(folder, cursor)
    try:
        store = connect(_folder_uri(folder, cursor))
        _push_extra(store, folder, cursor)
    except Exception as err:
        print(f"warning: tracking store {cursor['uri']} unreachable ({brief(err)}); kept in {folder / CURSOR} for "
              f"`deepstation runs sync {folder}`", file=sys.stderr)
    return cursor["run_id"]


def log_evaluation(store: Store, run, metrics: dict, source: str, seconds: float) -> str | None:
    """An evaluation of a finished run as its own MLflow run (tag deepstation.kind=evaluate, param source) in
    the run's experiment. The scores are already printed: a store failing now costs a warning, not them."""
    from deepstation import __version__
    from deepstation.track.usage import as_metrics, as_tags, device_of, measure

    try:
        experiment = run.task.tracking.experiment or run.task.name
        tags = {"mlflow.user": user(), "mlflow.source.name": "deepstation evaluate", "mlflow.source.type": "LOCAL",
                "deepstation.kind": "evaluate", "deepstation.host": socket.gethostname(),
                "deepstation.pid": str(os.getpid()), "deepstation.evaluated": run.id,
                "deepstation.evaluated_dir": str(Path(run.dir).resolve()), "deepstation.task": run.task.name,
                "deepstation.version": __version__}
        cursor = read_cursor(run.dir)  # a registered model's copy has no cursor; its summary names the run
        trained = cursor["run_id"] if cursor else run.summary.get("tracking_run_id")
        if trained:
            tags["deepstation.evaluated_run"] = trained
        created = store.call("create_run", store.experiment_id(experiment), start_time=_ms() - int(seconds * 1000),
                             tags=tags, run_name=f"evaluate {run.id}")
        run_id = created.info.run_id
        usage = measure(seconds, *device_of(str(run.plan.device)))
        values = {f"{split}.{k}": v for split, found in metrics.items() for k, v in found.items()}
        _log_batch(store, run_id, params={"source": masked(str(source))[:500]}, metrics={**values, **as_metrics(usage)},
                   tags=as_tags(usage))
        store.call("set_terminated", run_id, "FINISHED")
        return run_id
    except Exception as err:
        print(f"warning: the evaluation was not recorded in tracking store {store.shown} ({brief(err)})",
              file=sys.stderr)
        return None


def _push_extra(store: Store, folder: Path, cursor: dict) -> None:
    extra = cursor.get("extra")
    if not extra or (not extra["metrics"] and not extra["artifacts"]):
        return
    _log_batch(store, cursor["run_id"], metrics=extra["metrics"], step=0)
    for path in extra["artifacts"]:
        if Path(path).is_file():
            store.call("log_artifact", cursor["run_id"], path)
    cursor["extra"] = {"metrics": {}, "artifacts": []}
    write_cursor(folder, cursor)


def _send_lines(store: Store, folder: Path, cursor: dict) -> int:
    lines = _complete_lines(folder / "metrics.jsonl")
    sent = min(cursor.get("sent_lines", 0), len(lines))
    if sent == len(lines):
        return 0
    _post_lines(store, cursor["run_id"], lines[sent:])
    cursor["sent_lines"] = len(lines)
    write_cursor(folder, cursor)
    return len(lines) - sent


def _post_lines(store: Store, run_id: str, lines: list[str]) -> None:
    """metrics.jsonl lines to the run, each at its epoch's step; the cursor is the caller's."""
    if not lines:
        return
    from mlflow.entities import Metric

    now, batch = _ms(), []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        step = int(record.get("epoch") or 0)
        batch += [Metric(k, v, now, step) for k, v in flatten_metrics(record).items()]
    for i in range(0, len(batch), _METRICS_PER_BATCH):
        store.call("log_batch", run_id, metrics=batch[i:i + _METRICS_PER_BATCH])


def _log_batch(store: Store, run_id: str, params: dict | None = None, metrics: dict | None = None, step: int = 0,
               tags: dict | None = None) -> None:
    """One log_batch call where MLflow's limits allow (100 params, 1000 entities), more where they do not."""
    from mlflow.entities import Metric, Param, RunTag

    now = _ms()
    params = [Param(k, v) for k, v in (params or {}).items()]
    metrics = [Metric(_key(k), float(v), now, step) for k, v in (metrics or {}).items() if _number(v)]
    tags = [RunTag(k, v) for k, v in (tags or {}).items()]
    while params or metrics or tags:
        batch = {"params": params[:100], "tags": tags[:100]}
        batch["metrics"] = metrics[:1000 - len(batch["params"]) - len(batch["tags"])]
        params, tags, metrics = params[100:], tags[100:], metrics[len(batch["metrics"]):]
        store.call("log_batch", run_id, **batch)


# -- the pieces ------------------------------------------------------------------------------------------


def params_of(task) -> dict[str, str]:
    """The resolved task as MLflow params: dotted keys (trainer.learning_rate; inputs and outputs by name,
    inputs.image.size), values as text cut to MLflow's limit, URIs with their password masked."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    flat: dict[str, str] = {}

    def walk(value, key):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            for v in value:
                walk({k: x for k, x in v.items() if k != "name"}, f"{key}.{v['name']}")
        elif value is not None:
            text = masked(json.dumps(value) if isinstance(value, (list, dict)) else str(value))
            if len(text) > MAX_PARAM_VAL_LENGTH:
                marker = "...(cut)"
                text = text[:MAX_PARAM_VAL_LENGTH - len(marker)] + marker
            flat[_key(key)] = text

    walk(task.model_dump(mode="json"), "")
    return flat


def flatten_metrics(record: dict, prefix: str = "") -> dict[str, float]:
    """{"epoch": 3, "lr": .., "train": {"loss": ..}, "valid": {..}} -> {"lr": .., "train.loss": .., ...}."""
    out = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_metrics(v, key + "."))
        elif key != "epoch" and _number(v):
            out[_key(key)] = float(v)
    return out


def environment() -> dict:
    """The environment snapshot (deepstation.workstation.envsnap) or, until that exists, a minimal one."""
    return dict(_environment())


@lru_cache(maxsize=1)
def _environment() -> tuple:
    try:
        from deepstation.workstation.envsnap import snapshot

        return tuple(snapshot().items())
    except Exception:  # not there yet, or failing: the minimum that identifies the stack
        import platform
        from importlib import metadata

        found = {"python": platform.python_version(), "platform": platform.platform()}
        try:
            found["torch"] = metadata.version("torch")
        except metadata.PackageNotFoundError:
            pass
        torch = sys.modules.get("torch")
        if torch is not None:
            found["torch_cuda"] = torch.version.cuda
        return tuple(found.items())


@lru_cache(maxsize=8)
def git_commit(folder: str) -> str | None:
    """HEAD of the git repository holding `folder`, or None (not a repository, no git, or too slow)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a container)
        return str(os.getuid())


def read_cursor(folder) -> dict | None:
    path = Path(folder) / CURSOR
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_cursor(folder, cursor: dict) -> None:
    files.write_bytes(Path(folder) / CURSOR, (json.dumps(cursor, indent=1) + "\n").encode(), sync=False)


def _folder_uri(folder: Path, cursor: dict) -> str:
    """The real URI of the store a folder was tracked in: the task's tracking.uri or the environment's,
    which must be the one recorded (masked) in tracking.json."""
    import yaml

    config = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else {}
    uri = tracking_uri(((config or {}).get("tracking") or {}).get("uri"))
    if masked(uri) != cursor.get("uri"):
        raise DeepstationError(f"{folder}: tracked in {cursor.get('uri')}, but the store in use is {masked(uri)}; "
                               f"set $DEEPSTATION_TRACKING_URI to the run's store to sync it")
    return uri


def _usage(folder: Path, wall_seconds: float, device: str, task) -> dict:
    from deepstation.track.usage import device_of, measure

    summary = files.read_json(folder / "summary.json") if (folder / "summary.json").is_file() else {}
    scale = summary.get("scale") or {}  # what ran, for a scaled run: workers, GPUs per worker, their device
    workers = summary.get("workers") or scale.get("workers") or (task.scale.workers if task is not None else 1)
    gpus = scale.get("gpus_per_worker") or (task.scale.gpus_per_worker if task is not None else None)
    device = str(scale.get("worker_device") or summary.get("device") or device)
    kind, count = device_of(device, workers, gpus)
    return measure(wall_seconds, kind, count)


def _complete_lines(path: Path) -> list[str]:
    """The whole lines of a file (a line still being written, or cut by a kill, is left out)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [ln for ln in text.split("\n")[:-1] if ln.strip()]


def _key(key: str) -> str:
    """A name MLflow accepts: letters, digits, _ - . / and spaces; at most 250 characters."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)[:250]


def _number(value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _ms() -> int:
    return int(time.time() * 1000)
