"""The runs in a store, as `deepstation runs` shows them: list, show, compare; sync run folders that still
hold metrics the store has not had, and close runs whose process died (SIGKILL, power cut)."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError
from deepstation.track.store import Store, connect
from deepstation.track.tracker import (CURSOR, STATUS_OF_FOLDER, _complete_lines, _folder_uri, _push_extra,
                                       _send_lines, _usage, push_final, read_cursor)
from deepstation.track.uri import tracking_uri


def current_store(uri: str | None = None) -> Store:
    """The store in use ($DEEPSTATION_TRACKING_URI, else ./mlflow.db), reached now."""
    try:
        return connect(uri or tracking_uri())
    except DeepstationError as err:
        raise type(err)(f"{err}; point $DEEPSTATION_TRACKING_URI at a reachable store") from err


# -- sync and reconcile ----------------------------------------------------------------------------------


def sync_folder(path) -> str:
    """Send what a run folder holds and the store lacks; close the run with the folder's status. One line back."""
    from deepstation.run import RunFolder

    folder = Path(path)
    cursor = read_cursor(folder)
    if cursor is None:
        return f"{folder}: not tracked (no {CURSOR})"
    if _up_to_date(folder, cursor):
        return f"{folder}: up to date ({cursor['run_id']})"
    status = RunFolder(folder).status() if (folder / "run.json").is_file() else "killed"
    if status == "running":
        return f"{folder}: still running; its own process sends its metrics"
    store = connect(_folder_uri(folder, cursor))
    before = cursor.get("sent_lines", 0)
    if cursor.get("finished"):
        _send_lines(store, folder, cursor)
        _push_extra(store, folder, cursor)
    else:
        cursor["status"] = STATUS_OF_FOLDER.get(status, "FAILED")
        if not cursor.get("usage"):  # the process died before measuring: its epochs' time is what is known
            import json

            seconds = sum(json.loads(ln).get("seconds", 0) for ln in _complete_lines(folder / "metrics.jsonl")
                          if ln.startswith("{"))
            info = files.read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
            cursor["usage"] = _usage(folder, seconds, str(info.get("device", "cpu")), None)
        push_final(store, folder, cursor)
        ended = _ended_ms(folder)
        if ended:  # push_final closed the run now; it ended when it last wrote to its folder
            store.call("set_terminated", cursor["run_id"], cursor["status"], end_time=ended)
    sent = cursor.get("sent_lines", 0) - before
    return f"{folder}: synced {cursor['run_id']} ({sent} epoch line(s) sent, status {cursor.get('status')})"


def _ended_ms(folder: Path) -> int | None:
    """When the run in `folder` ended, as run.json says (for a killed run: its last write), in ms since the epoch."""
    try:
        ended = files.read_json(folder / "run.json").get("ended")
        return int(datetime.fromisoformat(ended).timestamp() * 1000) if ended else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _up_to_date(folder: Path, cursor: dict) -> bool:
    extra = cursor.get("extra") or {}
    return (cursor.get("finished") and not extra.get("metrics") and not extra.get("artifacts")
            and cursor.get("sent_lines", 0) >= len(_complete_lines(folder / "metrics.jsonl")))


def pending_folders(runs_dir, store: Store) -> list[Path]:
    """Run folders under `runs_dir` tracked in `store` with something left to send."""
    from deepstation.run import clean_runs_dir

    root = Path(runs_dir)
    if not root.is_dir():
        return []
    clean_runs_dir(root)  # runs list and runs sync read the folders: what kills left goes now
    found = []
    for cursor_path in sorted(root.glob(f"*/{CURSOR}")):
        cursor = read_cursor(cursor_path.parent)
        if cursor and cursor.get("uri") == store.shown and not _up_to_date(cursor_path.parent, cursor):
            found.append(cursor_path.parent)
    return found


def sync(paths, store: Store | None = None, quiet_running: bool = False) -> list[str]:
    lines = []
    for path in paths:
        try:
            line = sync_folder(path)
        except Exception as err:  # one folder's store away: the others still go
            from deepstation.track.store import brief

            line = f"{path}: not synced ({brief(err)})"
        if not (quiet_running and line.endswith("its own process sends its metrics")):
            lines.append(line)
    return lines


def reconcile(store: Store, runs: list) -> list[str]:
    """Runs the store has as RUNNING whose process is gone: their folder is synced and closed (KILLED,
    FAILED, or FINISHED when only the closing was missed); a run without a folder is closed as KILLED."""
    from deepstation.run import RunFolder, _alive

    here, closed = socket.gethostname(), []
    for run in runs:
        tags = run.data.tags
        if run.info.status != "RUNNING" or tags.get("deepstation.host") != here:
            continue
        run_dir = tags.get("deepstation.run_dir")
        if tags.get("deepstation.kind") == "train" and run_dir and (Path(run_dir) / "run.json").is_file():
            if RunFolder(run_dir).status() == "running":
                continue
            cursor = read_cursor(run_dir)
            if cursor and cursor.get("run_id") == run.info.run_id:
                sync_folder(run_dir)
                closed.append(run.info.run_id)
                continue
        elif _alive(tags.get("deepstation.pid")):
            continue
        store.call("set_terminated", run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


# -- reading runs ----------------------------------------------------------------------------------------


def list_runs(store: Store, limit: int = 20, experiment: str | None = None) -> list[dict]:
    ids = None
    if experiment:
        found = store.call("get_experiment_by_name", experiment)
        if found is None:
            names = [e.name for e in store.call("search_experiments")]
            from deepstation.errors import did_you_mean

            raise DeepstationError(f"--experiment {experiment}: no such experiment in {store.shown}; there are: "
                                   f"{', '.join(names) or 'none'}." + did_you_mean(experiment, names))
        ids = [found.experiment_id]
    runs = store.search_runs(ids, limit=limit)
    if reconcile(store, runs):
        runs = store.search_runs(ids, limit=limit)
    names = experiment_names(store)
    return [row(r, names) for r in runs]


def experiment_names(store: Store) -> dict:
    from mlflow.entities import ViewType

    return {e.experiment_id: e.name for e in store.call("search_experiments", view_type=ViewType.ALL)}


def row(run, names: dict) -> dict:
    """One run as `runs list --json` gives it."""
    info, tags, metrics = run.info, run.data.tags, run.data.metrics
    end = info.end_time or (None if info.status == "RUNNING" else info.start_time)
    duration = ((end or int(time.time() * 1000)) - info.start_time) / 1000 if info.start_time else None
    count = tags.get("usage.device_count")
    return {
        "tracking_id": info.run_id, "run": tags.get("deepstation.run") or info.run_name,
        "run_dir": tags.get("deepstation.run_dir"), "task": tags.get("deepstation.task"),
        "experiment": names.get(info.experiment_id, info.experiment_id), "kind": tags.get("deepstation.kind"),
        "status": info.status, "start": _iso(info.start_time), "duration_s": round(duration, 3) if duration else None,
        "user": tags.get("mlflow.user") or info.user_id, "monitor": tags.get("deepstation.monitor"),
        "headline": headline(run),
        "metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith(("test.", "baseline."))},
        "device": tags.get("usage.device_kind"), "device_count": int(count) if count else None,
        "cost_usd": metrics.get("usage.cost_usd"),
    }


def headline(run) -> dict | None:
    """The figure a run is judged by: its task's monitored metric (trainer.monitor) or, when that is the loss, its
    first output's main metric (compare.HEADLINE: accuracy, wer, mase or mape); on the test split, else the
    validation split. {"metric": "test.accuracy", "value": 0.93}, or None for a run without one."""
    from deepstation.compare import HEADLINE

    metrics, monitor = run.data.metrics, run.data.tags.get("deepstation.monitor")
    wanted = [monitor] if monitor and monitor != "loss" else []
    outputs = _outputs(run)
    if outputs:
        name, kind = outputs[0]
        for metric in ("mase", "mape") if kind == "number" else (HEADLINE.get(kind),):
            wanted.append(metric if len(outputs) == 1 else f"{name}_{metric}")
    else:  # an evaluation's run names no outputs: whichever main metric it has
        wanted += ["accuracy", "wer", "mase", "mape"]
    wanted.append("loss")
    for metric in filter(None, wanted):
        for split in ("test", "valid"):
            if f"{split}.{metric}" in metrics:
                return {"metric": f"{split}.{metric}", "value": metrics[f"{split}.{metric}"]}
    return None


def _outputs(run) -> list[tuple[str, str]]:
    """(name, type) of the run's outputs in the task's order: from its params (outputs.NAME.type), put in the
    order of its config.yaml where there are several and the folder is here."""
    params = run.data.params
    found = {k[len("outputs."):-len(".type")]: v for k, v in params.items()
             if k.startswith("outputs.") and k.endswith(".type")}
    run_dir = run.data.tags.get("deepstation.run_dir")
    if len(found) > 1 and run_dir and (Path(run_dir) / "config.yaml").is_file():
        import yaml

        try:
            names = [o["name"] for o in yaml.safe_load((Path(run_dir) / "config.yaml").read_text())["outputs"]]
            found = {n: found[n] for n in names if n in found} or found
        except (OSError, yaml.YAMLError, KeyError, TypeError):  # edited by hand: the params' order will do
            pass
    return list(found.items())


def find_run(store: Store, ref: str):
    """A run by MLflow id, a prefix of one, or a run folder's name or path."""
    path = Path(ref)
    cursor = read_cursor(path) if path.is_dir() else None
    if cursor:
        return store.call("get_run", cursor["run_id"])
    if len(ref) == 32:
        try:
            return store.call("get_run", ref)
        except Exception:
            pass
    name = path.name.replace("'", "")
    by_name = store.search_runs(filter_string=f"tags.\"deepstation.run\" = '{name}' and "
                                              f"tags.\"deepstation.kind\" = 'train'")
    if by_name:
        return by_name[0]
    matches = [r for r in store.search_runs(limit=5000) if r.info.run_id.startswith(ref.lower())]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DeepstationError(f"run `{ref}` is ambiguous: {', '.join(r.info.run_id[:12] for r in matches[:5])}; "
                               f"give more of the id")
    raise DeepstationError(f"run `{ref}`: no run with that id, id prefix or run folder in {store.shown}; "
                           f"`deepstation runs list` shows them")


def show(store: Store, ref: str) -> dict:
    run = find_run(store, ref)
    found = row(run, experiment_names(store))
    found["metrics"] = dict(sorted(run.data.metrics.items()))
    found["params"] = dict(sorted(run.data.params.items()))
    found["tags"] = {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.log-model")}
    found["end"] = _iso(run.info.end_time)
    found["artifact_uri"] = run.info.artifact_uri
    try:
        found["artifacts"] = [a.path for a in store.call("list_artifacts", run.info.run_id)]
    except Exception:
        found["artifacts"] = []
    return found


def compare(store: Store, a: str, b: str) -> dict:
    """Two runs side by side: every metric, and the params that differ."""
    left, right = show(store, a), show(store, b)
    metrics = sorted(set(left["metrics"]) | set(right["metrics"]))
    params = sorted(k for k in set(left["params"]) | set(right["params"])
                    if left["params"].get(k) != right["params"].get(k))
    return {"runs": [left["tracking_id"], right["tracking_id"]], "names": [left["run"], right["run"]],
            "metrics": {k: [left["metrics"].get(k), right["metrics"].get(k)] for k in metrics},
            "params": {k: [left["params"].get(k), right["params"].get(k)] for k in params}}


def _iso(ms) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")
