"""The same training loop in N Ray Train workers (TorchTrainer, DDP: gloo on CPUs, nccl on GPUs).

The driver (the `deepstation train` process) keeps what a single-process run does before and after training:
the data is read and encoded once, the model built and seeded once, and both are handed to every worker; when
training ends the driver loads best.pt from the run folder and tests it. In between:

  rank 0     writes the run folder through the store protocol (metrics.jsonl, checkpoint.pt, best.pt), validates,
             and sends each epoch's record to the driver, which shows it on the same progress bar
  rank 1..   train on their shard and write nothing; rank 0's validation and decisions are shared with them
  a worker   dies: Ray restarts all of them (scale.max_failures times); rank 0 resumes from the last checkpoint.pt

So rank 0 and the driver must see the same run folder: on a local cluster they do; on a remote one the runs
directory must be on a filesystem every node mounts at the same path (docs/cluster.md).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from deepstation import scale
from deepstation.errors import DeepstationError, TrainingError

KILL_ENV = "DEEPSTATION_TEST_KILL_WORKER"  # tests only: RANK:EPOCH:MARKER, see _doomed
SOCKET_LIMIT = 107  # bytes in an AF_UNIX socket path, and Ray puts its sockets under the temp dir
SOCKET_TAIL = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")
# Ray settings for the runs deepstation starts (the user's own environment wins): no auth token or usage report
# written under ~, quicker health checks, more patience for workers starting on a busy machine
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
           "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "600"}
LOCAL_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}  # nothing to watch


class WorkersFailed(DeepstationError):
    """Ray Train gave up: a worker failed more than scale.max_failures times."""

    exit_code = 1


def require():
    """Ray Train's torch support, or one line saying how to install it."""
    try:
        import ray.train.torch  # noqa: F401
    except ImportError as err:
        raise DeepstationError(f"scale.workers: training on several workers or a Ray cluster needs Ray Train, which "
                               f"is not installed ({err}); install it with `{scale.INSTALL}`, or train with "
                               f"--workers 1") from err


def fit(task, model, data, plan, store, progress, layout: scale.Layout):
    """Train on Ray Train as `layout` says; the store must be a RunFolder. Returns the loop's Outcome."""
    require()
    import torch

    from deepstation.training.loop import Outcome

    run_dir = Path(store.path).resolve()
    sync = getattr(store, "sync", None)  # a store that follows the folder (tracking) hears of each epoch
    with _cluster(task, layout, run_dir) as (layout, cpus):
        from ray.util.queue import Queue

        relay = Queue(actor_options={"num_cpus": 0})  # rank 0 -> driver: attempts and per-epoch records
        config = {"model": model.cpu(), "train": data.parts["train"], "valid": data.parts["valid"],
                  "targets": data.targets, "cfg": layout.trainer(task.trainer), "precision": task.trainer.precision,
                  "rng": torch.get_rng_state(), "run_dir": str(run_dir), "threads": max(1, int(cpus)), "relay": relay}
        try:
            result, attempts, device = _follow(_trainer(config, layout, cpus, run_dir, task.scale.max_failures),
                                               relay, progress, sync)
        finally:
            relay.shutdown()
    done = result.return_value
    if "error" in done:
        raise (TrainingError if done.get("training") else DeepstationError)(done["error"])
    outcome = Outcome(epochs=done["epochs"], best_epoch=done["best_epoch"], best=done["best"],
                      stopped=done["stopped"], best_state=store.load_best())
    outcome.scale = layout.summary(restarts=max(attempts - 1, 0), device=device)
    return outcome


def _trainer(config, layout, cpus, run_dir, max_failures):
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    resources = {"CPU": cpus, **({"GPU": layout.gpus_per_worker} if layout.gpus_per_worker else {})}
    env = {k: v for k, v in os.environ.items() if k.startswith("DEEPSTATION_")}  # remote nodes have their own
    return TorchTrainer(
        _work, train_loop_config=config,
        # nccl needs a whole GPU per process; GPUs shared between workers talk through gloo
        torch_config=TorchConfig(backend="nccl" if layout.gpus_per_worker >= 1 else "gloo"),
        scaling_config=ScalingConfig(num_workers=layout.workers, use_gpu=layout.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        # Ray Train's own state goes in the run folder, never ~/ray_results
        run_config=RunConfig(name="train", storage_path=str(run_dir / "ray"),
                             failure_config=FailureConfig(max_failures=max_failures),
                             worker_runtime_env={"env_vars": env} if env else None))


def _follow(trainer, relay, progress, sync=None):
    """Run the trainer on a thread and show rank 0's epochs as they come. Returns (result, attempts, device)."""
    from ray.util.queue import Empty

    finished: dict = {}

    def run():
        try:
            finished["result"] = trainer.fit()
        except BaseException as err:  # raised again on the driver's own thread below
            finished["error"] = err

    thread = threading.Thread(target=run, name="deepstation-ray-train", daemon=True)
    thread.start()
    attempts, device, shown = 0, None, False
    try:
        while thread.is_alive() or not relay.empty():
            try:
                kind, *args = relay.get(timeout=0.5)
            except Empty:
                continue
            if kind == "attempt":  # a worker group started: the first, or one restarted after a failure
                attempts, device = attempts + 1, args[0]
            elif kind == "start":
                if shown:  # a restart: a fresh bar from the epoch it resumes at
                    progress.close()
                progress.start(*args)
                shown = True
            elif kind == "epoch":
                progress.epoch(args[0])
                if sync is not None:
                    sync()
    finally:
        if shown:
            progress.close()
    thread.join()
    if "error" in finished:
        raise _failed(finished["error"], attempts)
    return finished["result"], attempts, device


def _failed(err, attempts: int):
    """Ray Train's error after its last restart, as one line: the workers' own last line of traceback."""
    from ray.train import TrainingFailedError

    if not isinstance(err, TrainingFailedError):
        return err
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return WorkersFailed(f"training on Ray stopped after {attempts} start(s) of the workers "
                         f"(scale.max_failures restarts at most): {lines[-1] if lines else type(err).__name__}")


# --- the cluster: a local one for the run, or an existing one ----------------------------------------------------


@contextmanager
def _cluster(task, layout, run_dir):
    """Connected to Ray for the run. Yields (layout, CPUs per worker); on an existing cluster the layout is made
    again from the cluster's GPUs (`workers: auto`, and the GPU default of `device: auto`), not this machine's."""
    import ray

    with _environ(RAY_ENV if layout.address else {**RAY_ENV, **LOCAL_ENV}):
        if ray.is_initialized():  # the caller's own connection (a notebook, a script): use it, leave it open
            yield _on_cluster(task, layout), 1
            _tidy(run_dir, None, False)
        elif layout.address:  # an existing cluster: connect, and only disconnect afterwards
            ray.init(address=layout.address, log_to_driver=False, logging_level=logging.WARNING)
            failed = True
            try:
                yield _on_cluster(task, layout), 1
                failed = False
            finally:
                ray.shutdown()
                _tidy(run_dir, None, failed)
        else:
            temp = _temp_dir(run_dir)
            cores = _cores()
            cpus = max(1, cores // layout.workers)
            failed = True
            try:
                ray.init(address="local", num_cpus=max(cores, cpus * layout.workers), _temp_dir=str(temp),
                         include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
                _check_gpus(layout, ray.cluster_resources())
                yield layout, cpus
                failed = False
            finally:
                ray.shutdown()  # every process of the local cluster ends here
                _tidy(run_dir, temp, failed)


def _tidy(run_dir: Path, temp: Path | None, failed: bool) -> None:
    """After the run: Ray's temp dir and Ray Train's storage (nothing deepstation reads) are removed; when the run
    failed, the local cluster's logs are kept in <run>/ray/logs for the post-mortem."""
    ray_dir = run_dir / "ray"
    logs = temp / "session_latest" / "logs" if temp is not None else None
    if failed and logs is not None and logs.is_dir():
        shutil.copytree(logs, ray_dir / "logs", dirs_exist_ok=True, ignore_dangling_symlinks=True)
    for entry in list(ray_dir.iterdir()) if ray_dir.is_dir() else []:
        if entry.name == "logs" and failed:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if temp is not None and temp != ray_dir:
        shutil.rmtree(temp, ignore_errors=True)
    if ray_dir.is_dir() and not any(ray_dir.iterdir()):
        ray_dir.rmdir()


def _on_cluster(task, layout):
    import ray

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    wants_gpu = gpus and (task.trainer.device == "auto" or task.trainer.device.startswith("cuda"))
    layout = scale.layout(task, "cuda" if wants_gpu else "cpu", gpus)
    layout = scale.Layout(**{**layout.__dict__, "address": layout.address or "this process's ray.init()"})
    _check_gpus(layout, resources)
    return layout


def _check_gpus(layout, resources: dict) -> None:
    """A run asking for more GPUs than there are would wait for ever: say so instead."""
    gpus, need = float(resources.get("GPU", 0)), layout.workers * layout.gpus_per_worker
    if need > gpus:
        where = f"the Ray cluster at {layout.address}" if layout.address else "this machine"
        raise DeepstationError(f"scale: {layout.workers} worker(s) x {layout.gpus_per_worker:g} GPU need {need:g} "
                               f"GPU(s); {where} has {gpus:g}; lower --workers or --gpus-per-worker")


def _temp_dir(run_dir: Path) -> Path:
    """Ray's temp dir (sockets, logs, spilled objects): <run>/ray when that path leaves room for the names of Ray's
    sockets (an AF_UNIX path holds 107 bytes), else a short /tmp/ds-ray-XXXXXXXX; removed after the run either way."""
    inside = run_dir / "ray"
    if len(str(inside).encode()) + SOCKET_TAIL <= SOCKET_LIMIT:
        inside.mkdir(parents=True, exist_ok=True)
        return inside
    return Path(tempfile.mkdtemp(prefix="ds-ray-", dir="/tmp" if os.path.isdir("/tmp") else None))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def _environ(values: dict):
    """os.environ with `values` set where the user has not set them, as it was afterwards."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


# --- in each worker ----------------------------------------------------------------------------------------------


def _work(config):
    """One Ray Train worker: the loop of deepstation.training.loop.fit on this rank's shard. Rank 0's return value
    reaches the driver as result.return_value."""
    import ray.train
    import ray.train.torch
    import torch

    from deepstation.run import RunFolder
    from deepstation.scale.sync import Group
    from deepstation.training import checkpoint, device as devices
    from deepstation.training.loop import fit
    from deepstation.training.progress import Silent

    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(config["threads"])
    device = ray.train.torch.get_device()
    plan = devices.Plan(device, devices.resolve_precision(config["precision"], device))
    group = Group(device)
    relay = config["relay"]
    store, progress = _Discard(), Silent()
    if rank == 0:
        relay.put(("attempt", str(device)))
        # the run folder by its absolute path (Ray moves workers' working directory); tracking, if any, follows the
        # folder from the driver
        store, progress = RunFolder(config["run_dir"]), _Relay(relay)

    # where to start: the checkpoint in the run folder (the run's own, after a worker died, or the one the run was
    # resumed from), read by rank 0 and shared, so only rank 0 needs to see the folder
    found = _last_checkpoint(store, checkpoint) if rank == 0 else None
    found = group.share(found)
    if isinstance(found, str):
        return {"error": found}
    torch.set_rng_state(config["rng"])  # the driver's, after seeding and building the model, as in one process
    try:
        outcome = fit(config["model"], config["train"], config["valid"], config["targets"], config["cfg"], plan,
                      _doomed(store, rank), progress, resume=found or None, dist=group)
    except TrainingError as err:  # every rank raises it at the same epoch: the losses are all-reduced
        return {"error": str(err), "training": True}
    return {"epochs": outcome.epochs, "best_epoch": outcome.best_epoch, "best": outcome.best,
            "stopped": outcome.stopped}


def _last_checkpoint(folder, checkpoint):
    """The run folder's checkpoint ({} when none), after dropping metric lines past it; or an error message."""
    try:
        if not folder.config.is_file():
            import socket

            return (f"{folder.path}: rank 0 (on {socket.gethostname()}) cannot see the run folder the driver made; "
                    f"put runs on a filesystem every Ray node mounts at the same path (--runs-dir), see "
                    f"docs/cluster.md")
        state = checkpoint.load(folder.checkpoint) if folder.checkpoint.exists() else {}
        folder.keep_metrics_through(int(state["epoch"]) if state else 0)
        return state
    except DeepstationError as err:
        return str(err)


class _Relay:
    """Rank 0's progress: each call goes to the driver, which shows it on the user's own progress object."""

    def __init__(self, queue):
        self.queue = queue

    def start(self, total: int, done: int, monitor: str) -> None:
        self.queue.put(("start", total, done, monitor))

    def epoch(self, record: dict) -> None:
        self.queue.put(("epoch", record))

    def close(self) -> None: ...


class _Discard:
    """The store of ranks 1..N-1: rank 0 alone writes the run folder."""

    def append_metrics(self, record): ...
    def save_checkpoint(self, state): ...
    def save_best(self, weights): ...
    def flush(self): ...

    def load_best(self):
        return None


def _doomed(store, rank: int):
    """Tests only: with DEEPSTATION_TEST_KILL_WORKER=RANK:EPOCH:MARKER, worker RANK kills itself (SIGKILL: no clean-up,
    as a lost node would) when it records epoch EPOCH, once: the MARKER file it leaves stops the next attempt."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return store
    who, epoch, marker = spec.split(":", 2)
    if int(who) != rank or os.path.exists(marker):
        return store

    class Doomed:
        def __getattr__(self, name):
            return getattr(store, name)

        def append_metrics(self, record):
            if record["epoch"] == int(epoch):
                Path(marker).touch()
                os.kill(os.getpid(), signal.SIGKILL)
            store.append_metrics(record)

    return Doomed()
