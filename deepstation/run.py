"""Runs are folders: train a task into one, resume one, load a finished one to evaluate or predict.

runs/<name>-<timestamp>/
  run.json         status (running, completed, failed, interrupted), pid, host, times
  config.yaml      the resolved task, every default filled in
  preprocess.json  what the codecs learned from the training rows (scales, vocabularies, sizes)
  metrics.jsonl    one line per epoch
  checkpoint.pt    the last epoch's full state, for --resume
  best.pt          the best epoch's weights
  summary.json     written last: its presence means the run finished
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from deepstation import files
from deepstation.config import Task, load_task
from deepstation.errors import DeepstationError, TrainingError, did_you_mean

from deepstation.files import RUNS_DIR_ENV  # noqa: F401  (the name users and tests know it by)
MAX_EPOCHS_ENV = "DEEPSTATION_MAX_EPOCHS"


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self._pending: list = []  # (path, state) writes waiting for the next background batch
        self._background = None

    @classmethod
    def create(cls, root, name: str) -> "RunFolder":
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            path = root / (f"{name}-{stamp}" + (f"-{n}" if n else ""))
            try:
                path.mkdir()  # atomic: two runs started in the same second get different folders
            except FileExistsError:
                continue
            folder = cls(path)
            # at once, so that a kill at any later moment leaves a folder marked as a run that did not finish
            folder.write_info(id=path.name, name=name, status="running", pid=os.getpid(), host=socket.gethostname(),
                              started=_now())
            return folder
        raise DeepstationError(f"{root}: could not create a new run folder for {name}")

    @classmethod
    def open(cls, path) -> "RunFolder":
        folder = cls(path)
        if not (folder.path / "run.json").is_file():
            raise DeepstationError(f"{path}: not a deepstation run folder (no run.json); pass a folder made by "
                                   f"`deepstation train`, such as runs/<name>-<timestamp>")
        if folder.status() != "running":  # a kill mid-write left a temporary file: gone at the next read
            folder.clean()
        if not (folder.path / "config.yaml").is_file():
            raise DeepstationError(f"{path}: the run stopped before it wrote its config.yaml; nothing to resume or "
                                   f"load, train the task again")
        return folder

    def clean(self) -> list[Path]:
        """Delete the temporary files a killed write left in the folder; return them."""
        stale = files.stale_temp(self.path)
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def __getattr__(self, name):  # folder.config, folder.checkpoint, ... -> paths
        names = {"info": "run.json", "config": "config.yaml", "preprocess": "preprocess.json",
                 "metrics": "metrics.jsonl", "checkpoint": "checkpoint.pt", "best": "best.pt",
                 "summary": "summary.json"}
        if name in names:
            return self.path / names[name]
        raise AttributeError(name)

    # -- status --
    def read(self, path) -> dict:
        """One of the folder's JSON files, or one line saying it is damaged."""
        try:
            found = files.read_json(path)
        except FileNotFoundError:
            raise DeepstationError(f"{path}: missing; the run folder is incomplete or was changed by hand (train "
                                   f"the task again)") from None
        except ValueError as err:
            raise DeepstationError(f"{path}: not readable JSON ({err}); the file was cut short or edited by hand; "
                                   f"restore it, or train the task again") from None
        if not isinstance(found, dict):
            raise DeepstationError(f"{path}: expected a JSON object, found {type(found).__name__}; restore the file "
                                   f"or train the task again")
        return found

    def write_info(self, **fields) -> None:
        with self._claim():
            info = self.read(self.info) if self.info.exists() else {}
            info.update(fields)
            files.write_json(self.info, {k: v for k, v in info.items() if v is not None})  # None: a field dropped

    @contextmanager
    def _claim(self):
        """run.json to this process alone while it reads and rewrites it: an advisory lock on the folder, so that a
        resume taking the folder over and a reader marking the run killed cannot interleave."""
        try:
            import fcntl
        except ImportError:  # not on Linux or macOS: no lock
            yield
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # the lock goes with it

    def status(self) -> str:
        """completed, failed, interrupted, running, or killed: a 'running' run whose process is gone (SIGKILL, out of
        memory, a power cut), which is then marked so in run.json, ended when it last wrote to its folder."""
        info = self.read(self.info)
        status = info.get("status", "unknown")
        if status == "running" and info.get("host") == socket.gethostname() and not _alive(info.get("pid")):
            self._mark_killed(info["pid"])
            return "killed"
        return status

    def _mark_killed(self, pid) -> None:
        try:
            with self._claim():
                info = files.read_json(self.info)  # again, under the lock: a resume may have taken the folder over
                if info.get("status") != "running" or info.get("pid") != pid:
                    return
                files.write_json(self.info, {**info, "status": "killed", "ended": self.last_write()})
        except (OSError, ValueError):  # a folder this user cannot write to: status() says killed at each read
            pass

    def last_write(self) -> str:
        """When the run last wrote to its folder (UTC, ISO): its last epoch's line, checkpoint or temporary file.
        tracking.json is left out: `runs sync` writes it after the run is gone."""
        times = []
        for path in self.path.iterdir():
            try:
                if "tracking.json" not in path.name and path.is_file():
                    times.append(path.stat().st_mtime)
            except OSError:  # a temporary file another reader tidied away meanwhile
                continue
        stamp = datetime.fromtimestamp(max(times), timezone.utc) if times else datetime.now(timezone.utc)
        return stamp.isoformat(timespec="milliseconds")

    # -- the store the training loop writes to --
    def append_metrics(self, record: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(_finite(record)) + "\n")

    def save_checkpoint(self, state: dict) -> None:
        self._pending.append((self.checkpoint, _snapshot(state)))
        self._writer().submit(*self._pending)  # best.pt (if any) then checkpoint.pt, in the background
        self._pending = []

    def save_best(self, weights: dict) -> None:
        # the loop's own CPU copy: no snapshot needed; a newer best replaces one still waiting for its checkpoint
        self._pending = [w for w in self._pending if w[0] != self.best] + [(self.best, weights)]

    def flush(self) -> None:
        """Wait for the background writes; called when training ends, whichever way."""
        if self._pending:
            self._writer().submit(*self._pending)
            self._pending = []
        if self._background is not None:
            self._background.wait()

    def _writer(self):
        from deepstation.training.checkpoint import Writer

        if self._background is None:
            self._background = Writer()
        return self._background

    def load_best(self) -> dict | None:
        from deepstation.training import checkpoint

        return checkpoint.load(self.best) if self.best.exists() else None

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop epoch lines past the checkpoint (they are trained again on resume)."""
        if not self.metrics.exists():
            return
        lines = [ln for ln in self.metrics.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if _epoch_of(ln) is not None and _epoch_of(ln) <= epoch]
        files.write_text(self.metrics, "".join(ln + "\n" for ln in kept))

    def history(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        return [json.loads(ln) for ln in self.metrics.read_text().splitlines() if ln.strip()]


def clean_runs_dir(root) -> None:
    """Tidy what kills left under `root`: temporary files in finished or dead runs' folders, and folders a kill
    cut short before their run.json (they hold nothing but a stale temporary file)."""
    for path in Path(root).iterdir() if Path(root).is_dir() else []:
        if not path.is_dir():
            continue
        if (path / "run.json").is_file():
            folder = RunFolder(path)
            if folder.status() != "running":
                folder.clean()
            continue
        stale, present = files.stale_temp(path), list(path.iterdir())
        if stale and sorted(stale) == sorted(present):
            for item in stale:
                item.unlink(missing_ok=True)
            path.rmdir()


def train(task, *, epochs: int | None = None, device: str | None = None, runs_dir=None, resume=None,
          progress=None, track: bool | None = None, workers=None, gpus_per_worker: float | None = None,
          ray_address: str | None = None) -> "Run":
    """Train a task (YAML path, dict or Task) into a new run folder, or resume a run folder; return the Run.
    `track=False` records nothing in the tracking store; `workers` (an int or "auto") trains data-parallel on
    Ray; each keyword overrides the task's own setting."""
    import torch

    from deepstation.data.prepare import prepare
    from deepstation.data.patterns import expand_patterns
    from deepstation.data.sources import read_task_source
    from deepstation.models.assemble import build_model, parameter_count
    from deepstation.training import checkpoint, device as devices
    from deepstation.training.evaluate import evaluate
    from deepstation.training.progress import Silent

    if resume is not None:
        folder = RunFolder.open(resume)
        if folder.summary.exists():
            raise DeepstationError(f"{folder.path}: the run already finished; nothing to resume (train again "
                                   f"with `deepstation train {folder.config}`)")
        task = load_task(folder.config)
    else:
        task = task if isinstance(task, Task) else load_task(task)
    task = _overrides(task, epochs, device, track=track,
                      scale={"workers": workers, "gpus_per_worker": gpus_per_worker, "ray_address": ray_address})
    cfg = task.trainer
    plan = devices.plan(cfg.device, cfg.precision)  # before the data: a wrong device fails fast
    _check_monitor(task)
    _check_scale(task, plan)  # Ray missing for --workers N: one line before any folder or data
    tracker = _tracker(task)  # the tracking store reachable, or a clear error, before any data is read

    table = read_task_source(task)
    task = expand_patterns(task, table)  # "v*" -> the columns it names, as the run's config.yaml keeps them
    data = prepare(task, table)
    notes = _check_data(task, data)  # refusals before any folder is made; warnings go to stderr and summary.json
    if task.data.split.backtest > 1 and data.forecast:
        _check_backtest(task, table)
    seed(cfg.seed)
    model = build_model(task, data.codecs, data.targets)

    state = None
    if resume is not None and folder.checkpoint.exists():
        state = checkpoint.load(folder.checkpoint)
        folder.keep_metrics_through(int(state["epoch"]))
    else:
        if resume is None:
            folder = RunFolder.create(files.runs_dir(runs_dir), task.name)
        folder.keep_metrics_through(0)
    _write_task(folder, task, data)
    folder.write_info(id=folder.path.name, name=task.name, status="running", pid=os.getpid(),
                      host=socket.gethostname(), started=_now(), device=str(plan.device), precision=plan.precision,
                      ended=None, reason=None)  # a resumed run's last ending is over

    began = time.perf_counter()
    try:
        if tracker is not None:  # the MLflow run: created (or reopened on resume), params, tags, environment
            tracker.start(task, folder, str(plan.device), resume=resume is not None)
        store = tracker.wrap(folder) if tracker is not None else folder  # each epoch's line goes on to the store
        outcome = _fit(task, model, data, plan, store, progress or Silent(), state)
    except TrainingError as err:
        folder.write_info(status="failed", ended=_now(), reason=str(err))
        _finish(tracker, "FAILED")
        raise
    except KeyboardInterrupt:
        folder.write_info(status="interrupted", ended=_now())
        _finish(tracker, "KILLED")
        raise
    except BaseException as err:
        folder.write_info(status="failed", ended=_now(), reason=f"{type(err).__name__}: {err}")
        _finish(tracker, "FAILED")
        raise
    if outcome.best_state is not None:
        model.load_state_dict(outcome.best_state)
    metrics = {split: evaluate(model, _on(part, plan.device), plan, cfg.eval_batch_size, data.targets)
               for split, part in data.parts.items() if len(part)}
    summary = _finite({
        "run": folder.path.name, "run_dir": str(folder.path.resolve()), "task": task.name, "status": "completed",
        "stopped": outcome.stopped, "epochs": outcome.epochs, "best_epoch": outcome.best_epoch,
        "monitor": f"{'valid' if len(data.parts['valid']) else 'train'}.{cfg.monitor}", "metrics": metrics,
        "device": str(plan.device), "precision": plan.precision, "parameters": parameter_count(model),
        "seconds": round(time.perf_counter() - began, 3), "torch": torch.__version__,
        "tracking_run_id": tracker.run_id if tracker is not None else None,
        "warnings": notes,
        "scale": outcome.scale,  # workers, global and per-worker batch, learning rate, restarts (deepstation.scale)
        "data": {"rows": {s: len(p) for s, p in data.parts.items()}, "skipped": data.skipped, "notes": data.notes,
                 "unseen_labels": data.unseen, **({"series": len(data.forecast["history"]), "skipped_series":
                                                   data.forecast["skipped"]} if data.forecast else {})},
    })
    if task.data.split.backtest > 1 and data.forecast:
        summary["backtest"] = _finite(backtest(task, table, plan, summary["metrics"].get("test", {})))
    files.write_json(folder.summary, summary)
    folder.write_info(status="completed", ended=_now())
    _finish(tracker, "FINISHED")  # final metrics, usage, artifacts (model/ for `deepstation register`)
    run = Run(folder, task, model, data.codecs, data.targets, plan, summary)
    run.data = data  # the prepared split, for baselines and reports run right after training
    return run


def _check_scale(task: Task, plan) -> None:
    import torch

    from deepstation import scale

    if scale.layout(task, plan.device.type, torch.cuda.device_count()).distributed:
        from deepstation.scale.ray import require

        require()


def _tracker(task: Task):
    """The run's link to the tracking store (MLflow), or None with tracking.enabled false."""
    if not task.tracking.enabled:
        return None
    from deepstation.track.tracker import Tracker

    return Tracker.connect(task)


def _finish(tracker, status: str) -> None:
    if tracker is not None:
        tracker.finish(status)


def _fit(task: Task, model, data, plan, store, progress, state):
    """The training itself: in this process, or (scale.workers > 1, or a Ray address) in Ray Train workers around
    the same loop (deepstation.scale.ray). The outcome says how in `scale`: workers, batch, learning rate."""
    import torch

    from deepstation import scale
    from deepstation.training.loop import fit

    layout = scale.layout(task, plan.device.type, torch.cuda.device_count())
    if layout.distributed:
        from deepstation.scale import ray as on_ray

        outcome = on_ray.fit(task, model, data, plan, store, progress, layout)
        model.to(plan.device)  # it went to the workers from the CPU; the final test and predict run here
        return outcome
    outcome = fit(model, data.parts["train"], data.parts["valid"], data.targets, task.trainer, plan, store, progress,
                  resume=state)
    outcome.scale = layout.summary()
    return outcome


def backtest(task, table, plan, last_fold: dict) -> dict:
    """Rolling origin: fold i trains and tests on the series as it stood i horizons earlier. Fold 0 is the run
    itself (`last_fold`); the others are trained in memory. Returns {"folds": [test metrics...], "mean": {...}}."""
    from deepstation.data.prepare import prepare
    from deepstation.models.assemble import build_model
    from deepstation.training.evaluate import evaluate
    from deepstation.training.loop import fit
    from deepstation.training.progress import Silent

    horizon = task.outputs[0].horizon
    folds = [last_fold]
    for i in range(1, task.data.split.backtest):
        data = prepare(task, table, cut=i * horizon)
        seed(task.trainer.seed)
        model = build_model(task, data.codecs, data.targets)
        outcome = fit(model, data.parts["train"], data.parts["valid"], data.targets, task.trainer, plan,
                      MemoryStore(), Silent())
        model.load_state_dict(outcome.best_state)
        folds.append(evaluate(model, _on(data.parts["test"], plan.device), plan, task.trainer.eval_batch_size,
                              data.targets))
    mean = {k: float(sum(f[k] for f in folds) / len(folds)) for k in folds[0]}
    return {"folds": folds, "mean": mean}


def _check_backtest(task, table) -> None:
    """The earliest fold must have data enough, before anything trains."""
    from deepstation.data.series import forecast_windows

    k, horizon = task.data.split.backtest, task.outputs[0].horizon
    try:
        forecast_windows(task, table, cut=(k - 1) * horizon)
    except DeepstationError as err:
        raise DeepstationError(f"{err} (data.split.backtest: {k} tests {k} origins, the earliest "
                               f"{(k - 1) * horizon} points before the end; lower it)") from err


class MemoryStore:
    """A store in memory (epoch records and the best weights, no checkpoints): for backtest folds, which leave no
    run folder, and for tests of the loop."""

    def __init__(self):
        self.records, self.best = [], None

    def append_metrics(self, record):
        self.records.append(record)

    def save_checkpoint(self, state): ...
    def flush(self): ...

    def save_best(self, weights):
        self.best = weights

    def load_best(self):
        return self.best


class Run:
    """A finished run: its task, model and fitted codecs. deepstation.load(run_dir) returns one."""

    def __init__(self, folder: RunFolder, task: Task, model, codecs: dict, targets: dict, plan, summary: dict):
        self.folder, self.task, self.model = folder, task, model
        self.codecs, self.targets, self.plan, self.summary = codecs, targets, plan, summary
        self.unseen_labels: dict = {}

    @property
    def id(self) -> str:
        return self.folder.path.name

    @property
    def dir(self) -> Path:
        return self.folder.path

    @property
    def metrics(self) -> dict:
        return self.summary["metrics"]

    def __repr__(self) -> str:
        return f"Run({self.id!r}, metrics={self.metrics.get('test', self.metrics.get('valid'))})"

    @classmethod
    def load(cls, path, device: str = "auto") -> "Run":
        from deepstation.data.prepare import make_codecs
        from deepstation.models.assemble import build_model
        from deepstation.training import checkpoint, device as devices

        if str(path).startswith("models:/"):  # a registered model: its run files, downloaded once into a cache
            from deepstation.track.registry import resolve

            path = resolve(str(path))
        folder = RunFolder.open(path)
        if not folder.summary.exists():
            raise DeepstationError(f"{folder.path}: the run is incomplete (status: {folder.status()}); resume it with "
                                   f"`deepstation train --resume {folder.path}`")
        task = load_task(folder.config)
        summary = folder.read(folder.summary)
        codecs, targets = make_codecs(task, folder.read(folder.preprocess))
        model = build_model(task, codecs, targets)
        model.load_state_dict(checkpoint.load(folder.best))
        plan = devices.plan(device, "auto")
        model.to(plan.device).eval()
        return cls(folder, task, model, codecs, targets, plan, summary)

    def evaluate(self, source: str | None = None) -> dict:
        """Metrics per split of the task's own data (same split), or over every row of another `source` (as
        "test"). Labels the model never saw count as misses and are listed in `self.unseen_labels`."""
        from deepstation.data.prepare import encode_table, prepare
        from deepstation.data.sources import read_source, read_task_source
        from deepstation.training.evaluate import evaluate

        bs = self.task.trainer.eval_batch_size
        if source is None:
            data = prepare(self.task, read_task_source(self.task), self._state())
            parts = {s: p for s, p in data.parts.items() if len(p)}
            self.unseen_labels = data.unseen
        else:
            table = read_source(str(source), self.task.data.index, header=self.task.data.header)
            part, unseen, _ = encode_table(self.codecs, self.targets, table, True, self.task)
            parts = {"test": part}
            self.unseen_labels = {f"test/{name}": labels for name, labels in unseen.items()}
        return {s: _finite(evaluate(self.model, _on(p, self.plan.device), self.plan, bs, self.targets))
                for s, p in parts.items()}

    def predict(self, data, ids=None, as_columns: bool = False):
        """Predictions for a DataFrame, a CSV/Parquet file, an image or a folder of images, as a DataFrame:
        the input columns, then `<output>_pred` (and `<output>_prob` for categories). A forecasting task forecasts
        past the end of every series (or of the `ids` given), in long format: id (with many series), step, date
        (where known), forecast, and a column per quantile (q0.1, ...).
        A list of DataFrames gives a list of frames, each as if predicted alone, from one forward pass (the server's
        batches): for a forecasting task each DataFrame holds its own series, without an id column for one.
        as_columns: a forecast's frames as {column: numpy values} (what the server answers with)."""
        from deepstation.data.prepare import encode_tables
        from deepstation.training.evaluate import run_batches

        many = isinstance(data, list)
        tables = [input_table(self.task, d) for d in (data if many else [data])]
        part, tables, bounds = encode_tables(self.codecs, self.targets, tables, self.task, ids)
        preds, _ = run_batches(self.model, _on(part, self.plan.device).features, self.plan,
                               self.task.trainer.eval_batch_size)
        preds = {name: {k: v.numpy() if hasattr(v, "numpy") else v for k, v in p.items()} for name, p in preds.items()}
        frames = predictions(self.task, self.targets, tables, preds, bounds, as_columns)
        return frames if many else frames[0]

    def _state(self) -> dict:
        from deepstation.data.prepare import state_of

        return state_of(self.codecs, self.targets)


def input_table(task: Task, data):
    """What predict reads: a DataFrame, a CSV/Parquet file, or image or audio files (one, or a folder of them)."""
    import pandas as pd

    from deepstation.data.sources import Table, read_inputs

    if isinstance(data, pd.DataFrame):
        return Table(data.reset_index(drop=True), "data", Path.cwd())
    only = task.inputs[0] if len(task.inputs) == 1 else None
    column = only.column if only is not None and only.type in ("image", "audio") else None
    return read_inputs(data, column, task.data.index, task.data.header)


def predictions(task: Task, targets: dict, tables: list, preds: dict, bounds: list, as_columns: bool = False):
    """prediction_frame of each table (its rows of the predictions: `bounds`). as_columns: a forecast's frames as
    {column: values} instead (the server's answers, which need no DataFrame: one is 0.3 ms under pandas 3).
    Shared by Run.predict and ONNX Runtime's OnnxModel.predict."""
    from deepstation.data.series import LEVEL

    if as_columns and LEVEL in tables[0].frame:
        return [forecast_columns(task, targets, t, preds, rows) for t, rows in zip(tables, bounds)]
    return [prediction_frame(task, targets, t, preds, rows) for t, rows in zip(tables, bounds)]


def prediction_frame(task: Task, targets: dict, table, preds: dict, rows: slice = slice(None)):
    """The heads' predictions (numpy, or lists of tokens) as predict gives them: the input rows with
    `<output>_pred` (and `_prob`), or for a forecast one row per series and step past its end (id, step, date,
    forecast, quantiles). `rows`: the predictions' rows that are the table's (a forward pass of several tables)."""
    import pandas as pd

    from deepstation.data.series import LEVEL

    if LEVEL in table.frame:
        return pd.DataFrame(forecast_columns(task, targets, table, preds, rows))
    result = table.frame
    for name, pred in preds.items():
        pred = {k: v[rows] for k, v in pred.items()}
        codec = targets[name]
        if "class" in pred:
            result[f"{name}_pred"] = codec.decode(pred["class"])
            result[f"{name}_prob"] = pred["prob"]
        else:
            result[f"{name}_pred"] = codec.decode(pred["tokens"] if "tokens" in pred else pred["value"])
    return result


def forecast_columns(task: Task, targets: dict, table, preds: dict, rows: slice = slice(None)) -> dict:
    """A forecast's predictions as columns: a row per series and step past its end (id, step, date, forecast,
    quantiles)."""
    import numpy as np

    from deepstation.data.series import LEVEL, forecasting_input, future_dates

    preds = {name: {k: v[rows] for k, v in pred.items()} for name, pred in preds.items()}
    (name, pred), = preds.items()
    # a forecast's windows are a row per series (of several tables, for a batch of requests: `rows` are this one's)
    codec, levels = targets[name], table.frame[LEVEL].to_numpy()[rows]
    f = table.frame.attrs["forecast"]
    values = codec.decode(pred["value"], levels)  # [series, horizon]
    n, h = values.shape
    columns = {}
    if forecasting_input(task).id:
        columns["id"] = np.repeat(np.asarray(f["ids"][rows], dtype=object), h)
    columns["step"] = np.tile(np.arange(1, h + 1), n)
    if all(d is not None for d in f["dates"][rows]):
        future = [future_dates(dates, h) for dates in f["dates"][rows]]
        columns["date"] = future[0].append(future[1:]) if len(future) > 1 else future[0]
    columns["forecast"] = values.ravel()
    if "quantiles" in pred:
        q = codec.decode(pred["quantiles"], levels)  # [series, horizon, quantiles]
        for j, level in enumerate(codec.spec.quantiles):
            columns[f"q{level:g}"] = q[:, :, j].ravel()
    return columns


def without_blobs(frame):
    """The frame less its columns of arrays, lists or bytes (built-in images, whole series, decoded request files):
    inputs that belong neither in a CSV nor in a response."""
    def blobs(name, dtype) -> bool:
        if dtype != object or len(frame) == 0:
            return False
        first = frame[name].iloc[0]
        return hasattr(first, "shape") or isinstance(first, (bytes, bytearray, memoryview, list, tuple))

    keep = [c for c, dtype in frame.dtypes.items() if not blobs(c, dtype)]
    return frame if len(keep) == len(frame.columns) else frame[keep]  # no copy when there is nothing to leave out


def seed(value: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def _overrides(task: Task, epochs, device, track=None, scale=None) -> Task:
    trainer, sections = {}, {}
    if track is not None:
        sections["tracking"] = {"enabled": bool(track)}
    scale = {k: v for k, v in (scale or {}).items() if v is not None}
    if scale:
        sections["scale"] = scale
    if epochs is not None:
        trainer["epochs"] = int(epochs)
    if device is not None:
        trainer["device"] = device
    cap = os.environ.get(MAX_EPOCHS_ENV)
    if cap:
        if not cap.isdigit() or int(cap) < 1:
            raise DeepstationError(f"{MAX_EPOCHS_ENV}={cap!r}: expected a positive whole number of epochs")
        trainer["epochs"] = min(int(cap), trainer.get("epochs", task.trainer.epochs))
    if not trainer and not sections:
        return task
    merged = task.model_dump()
    merged["trainer"].update(trainer)
    for key, values in sections.items():
        merged[key].update(values)
    return load_task(merged)


def _check_monitor(task: Task) -> None:
    from deepstation.training.metrics import names

    from deepstation.data.series import forecasting_input

    known = names(task.outputs, forecasting_input(task) is not None)
    if task.trainer.monitor not in known:
        raise DeepstationError(f"trainer.monitor: `{task.trainer.monitor}` is not a metric of this task; expected "
                               f"one of {', '.join(known)}." + did_you_mean(task.trainer.monitor, known))
    if task.data.split.valid == 0 and task.trainer.monitor != "loss":
        raise DeepstationError(f"trainer.monitor: `{task.trainer.monitor}` needs validation rows, but "
                               f"data.split.valid is 0; set data.split.valid above 0 or monitor `loss`")


def _check_data(task: Task, data) -> list[str]:
    """What the split and the labels allow, before anything trains: refuse a run whose results would mean nothing
    (no test rows, one class, a monitor no validation row can give); warn about what is legal but likely wrong."""
    from deepstation.data.series import forecasting_input

    rows = {split: len(part) for split, part in data.parts.items()}
    where = f"data.split.column `{task.data.split.column}`" if task.data.split.column else "data.split"
    if not rows["test"]:
        why = ""
        for out in task.outputs if not task.data.split.column else []:
            classes = len(data.targets[out.name].state.get("labels", [])) if out.type == "category" else 0
            if classes * 3 > sum(rows.values()):  # the split is stratified by class: tiny classes go whole to train
                why = (f"; it is stratified by outputs.{out.name}, whose {classes} classes have about "
                       f"{sum(rows.values()) / classes:.1f} rows each (is `{out.column}` a number? then type: number)")
                break
        raise DeepstationError(f"{where}: the split leaves no test rows ({rows['train']} train, {rows['valid']} "
                               f"valid), so the run could not be scored{why}; set data.split.test above 0 or mark "
                               f"test rows")
    notes = []
    if not rows["valid"]:
        if task.trainer.monitor != "loss":
            raise DeepstationError(f"trainer.monitor: `{task.trainer.monitor}` needs validation rows, but {where} "
                                   f"leaves none; set data.split.valid above 0, mark valid rows, or monitor `loss`")
        notes.append(f"{where} leaves no validation rows: the best epoch is picked by the training loss")
    for out in task.outputs:
        if out.type != "category" or len(data.targets[out.name].state["labels"]) > 1:
            continue
        label = data.targets[out.name].state["labels"][0]
        if out.allow_single_class:
            notes.append(f"outputs.{out.name}: column `{out.column}` holds one class only ({label!r}); every "
                         f"prediction is that class (allow_single_class: true)")
        else:
            raise DeepstationError(f"outputs.{out.name}: column `{out.column}` holds one class only ({label!r}) in "
                                   f"the {rows['train']} training rows, so every prediction would be right by "
                                   f"default; check the column, or set allow_single_class: true")
    history = forecasting_input(task)
    for inp in task.inputs:
        if inp is history:  # a forecast's window of the output's own past is the point, not a leak
            continue
        used = set(getattr(inp, "columns", None) or []) | set(getattr(inp, "categorical", None) or [])
        used |= {inp.column} if isinstance(getattr(inp, "column", None), str) else set()
        for out in task.outputs:
            if out.column in used:
                notes.append(f"inputs.{inp.name} reads column `{out.column}`, which outputs.{out.name} predicts: the "
                             f"answer is among the inputs (target leakage); remove it from the input")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    for note in data.notes:  # what was done to the data (a carved validation split, series padded): said, not warned
        print(f"note: {note}", file=sys.stderr)
    return notes


def _write_task(folder: RunFolder, task: Task, data) -> None:
    import yaml

    stored = task.model_dump(mode="json")
    for note in _keep_secrets_out(stored):
        print(f"warning: {note}", file=sys.stderr)
    files.write_text(folder.config, yaml.safe_dump(stored, sort_keys=False))
    files.write_json(folder.preprocess, data.state())


# A password written in a URL of the task never reaches the run folder (nor, through it, the tracking store's
# artifacts): the stored URL names one of these environment variables instead, which resume and evaluate expand.
SECRET_VARIABLES = {"data.source.sql.url": "DEEPSTATION_SQL_PASSWORD", "tracking.uri": "DEEPSTATION_TRACKING_PASSWORD"}
_USERINFO = re.compile(r"^([^:/]+://[^:/@]*:)([^/?#]*)(@.*)$", re.DOTALL)


def _keep_secrets_out(dumped: dict) -> list[str]:
    """Replace, in the dumped task, each literal password of a URL by ${VARIABLE}; say what was done."""
    source, notes = dumped["data"]["source"], []
    places = [(source["sql"], "url", "data.source.sql.url")] if isinstance(source, dict) and "sql" in source else []
    places.append((dumped["tracking"], "uri", "tracking.uri"))
    for holder, key, where in places:
        match = _USERINFO.match(holder.get(key) or "")
        if match and match.group(2) and "$" not in match.group(2):
            variable = SECRET_VARIABLES[where]
            holder[key] = f"{match.group(1)}${{{variable}}}{match.group(3)}"
            notes.append(f"{where}: the password written in the task is stored in the run folder as ${{{variable}}}; "
                         f"export {variable} to resume or evaluate this run, and keep passwords in the environment "
                         f"(see docs/tracking.md, Secrets)")
    return notes


def _on(part, device):
    from deepstation.data.prepare import Part
    from deepstation.training.tensors import to_device

    return Part(to_device(part.features, device), to_device(part.targets, device), part.rows)


def _snapshot(state):
    from deepstation.training.checkpoint import snapshot

    return snapshot(state)


def _finite(obj):
    """NaN and inf as null: JSON has no such numbers."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _epoch_of(line: str):
    try:
        return json.loads(line).get("epoch")
    except ValueError:
        return None  # a line cut short by a kill


def _alive(pid) -> bool:
    return bool(pid) and files.alive(int(pid))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
