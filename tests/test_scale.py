"""Data-parallel training: the layout arithmetic, the loop in two torch.distributed processes against one, Ray Train
end to end (a worker killed mid-run, restarted, finishing like a single process), and Ray missing."""
from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import pytest
import torch

import deepstation
from conftest import cli, last_json, table_task, user_error, write_task
from deepstation import scale
from deepstation.config import load_task
from deepstation.run import MemoryStore

RAY_PLACES = [Path("/tmp/ray"), Path.home() / ".ray", Path.home() / "ray_results"]


def _ray_installed() -> bool:
    try:
        import ray.train.torch  # noqa: F401
    except ImportError:
        return False
    return True


needs_ray = pytest.mark.skipif(not _ray_installed(), reason="Ray Train is not installed (pip install "
                                                           "'deepstation[cluster]')")


def _task(source, **scale_section):
    raw = table_task(source)
    raw["scale"] = scale_section
    return load_task(raw)


def _history(run_dir) -> list[dict]:
    return [json.loads(ln) for ln in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


# --- the layout: workers, batch and learning rate -----------------------------------------------------------------


def test_one_worker_is_the_plain_run(table_csv):
    lay = scale.layout(_task(table_csv), "cpu", 0)
    assert not lay.distributed
    assert (lay.per_worker_batch, lay.global_batch, lay.learning_rate) == (32, 32, 0.01)


def test_global_batch_splits_trainer_batch_across_workers(table_csv):
    lay = scale.layout(_task(table_csv, workers=4, batch="global", lr_scaling="linear"), "cpu", 0)
    assert lay.distributed
    assert (lay.per_worker_batch, lay.global_batch, lay.learning_rate) == (8, 32, 0.01)  # same step as 1 process
    odd = scale.layout(_task(table_csv, workers=3, lr_scaling="linear"), "cpu", 0)
    assert (odd.per_worker_batch, odd.global_batch, odd.learning_rate) == (11, 33, 0.01)  # rounding moves no rate


@pytest.mark.parametrize("rule, lr", [("none", 0.01), ("linear", 0.04), ("sqrt", 0.02)])
def test_per_worker_batch_grows_the_step_and_scales_the_rate_as_asked(table_csv, rule, lr):
    lay = scale.layout(_task(table_csv, workers=4, batch="per_worker", lr_scaling=rule), "cpu", 0)
    assert (lay.per_worker_batch, lay.global_batch) == (32, 128)
    assert lay.learning_rate == pytest.approx(lr)
    cfg = lay.trainer(_task(table_csv).trainer)
    assert (cfg.batch_size, cfg.learning_rate) == (32, pytest.approx(lr))


def test_auto_takes_every_gpu_of_the_machine(table_csv):
    lay = scale.layout(_task(table_csv, workers="auto"), "cuda", 4)
    assert (lay.workers, lay.gpus_per_worker, lay.per_worker_batch) == (4, 1.0, 8)
    half = scale.layout(_task(table_csv, workers="auto", gpus_per_worker=0.5), "cuda", 2)
    assert half.workers == 4


def test_auto_without_a_gpu_trains_in_this_process_and_says_so(table_csv, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)  # as on a machine without one
    run = deepstation.train(table_task(table_csv, epochs=1), workers="auto")
    s = run.summary["scale"]
    assert (s["workers"], s["gpus_per_worker"], s["ray"]) == (1, 0.0, False)
    assert "no GPU" in s["note"]


def test_gpus_per_worker_defaults_to_the_trainer_device(table_csv):
    assert scale.layout(_task(table_csv, workers=2), "cuda", 2).gpus_per_worker == 1.0
    assert scale.layout(_task(table_csv, workers=2), "cpu", 2).gpus_per_worker == 0.0
    assert scale.layout(_task(table_csv, workers=2, gpus_per_worker=0.25), "cpu", 0).gpus_per_worker == 0.25


def test_a_plain_run_reports_its_scale(table_csv):
    s = deepstation.train(table_task(table_csv, epochs=1)).summary["scale"]
    assert s == {"workers": 1, "gpus_per_worker": 0.0, "batch": "global", "global_batch": 32, "per_worker_batch": 32,
                 "learning_rate": 0.01, "lr_scaling": "none", "restarts": 0, "ray": False}


# --- without Ray ----------------------------------------------------------------------------------------------------


def test_workers_without_ray_say_how_to_install_it(table_csv, tmp_path, monkeypatch):
    for name in ("ray", "ray.train", "ray.train.torch"):
        monkeypatch.setitem(sys.modules, name, None)  # `import ray` raises ImportError
    line = user_error(cli("train", write_task(tmp_path, table_task(table_csv)), "--workers", "2"))
    assert "pip install 'deepstation[cluster]'" in line


# --- the loop in two processes: the same steps as one ---------------------------------------------------------------


def test_sharding_makes_the_single_process_batches():
    """Rank r takes r, r+N, ...: step s of N ranks with batch b covers the one-process batch s of size b*N."""
    from deepstation.scale.sync import Group

    order, b = torch.randperm(23, generator=torch.Generator().manual_seed(0)), 3
    ranks = []
    for rank in range(2):
        g = Group.__new__(Group)
        g.rank, g.size = rank, 2
        ranks.append(g.shard(order))
    assert len(ranks[0]) == len(ranks[1]) == 12  # padded by wrapping round: the same number of steps everywhere
    for step in range(4):
        together = torch.cat([r[step * b:(step + 1) * b] for r in ranks])
        padded = torch.cat([order, order[:1]])
        assert sorted(together.tolist()) == sorted(padded[step * b * 2:(step + 1) * b * 2].tolist())


def _rank(rank, world, init, job_file, out):
    import torch.distributed as dist

    from deepstation.scale.sync import Group
    from deepstation.training.loop import fit
    from deepstation.training.progress import Silent

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        job = torch.load(job_file, weights_only=False)  # each process its own copy, as Ray workers have
        torch.set_rng_state(job["rng"])
        kept = MemoryStore()
        outcome = fit(job["model"], job["train"], job["valid"], job["targets"], job["cfg"], job["plan"], kept,
                      Silent(), dist=Group(torch.device("cpu")))
        torch.save({"records": kept.records, "outcome": (outcome.epochs, outcome.best_epoch, outcome.best, outcome.stopped),
                    "weights": outcome.best_state}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_processes_train_the_same_trajectory_as_one(table_csv, tmp_path):
    """DDP with the global batch split in two: per-epoch losses, decisions and best weights match one process."""
    from deepstation.data.prepare import prepare
    from deepstation.data.sources import read_source
    from deepstation.models.assemble import build_model
    from deepstation.run import seed
    from deepstation.training import device as devices
    from deepstation.training.loop import fit
    from deepstation.training.progress import Silent

    task = load_task({**table_task(table_csv, epochs=3, patience=1), "scale": {"workers": 2}})
    data = prepare(task, read_source(task.data.source))
    plan = devices.plan("cpu", "fp32")
    seed(0)
    model = build_model(task, data.codecs, data.targets)
    job = {"model": model, "train": data.parts["train"], "valid": data.parts["valid"], "targets": data.targets,
           "plan": plan, "rng": torch.get_rng_state(),
           "cfg": scale.layout(task, "cpu", 0).trainer(task.trainer)}
    torch.set_rng_state(job["rng"])
    kept = MemoryStore()
    one = fit(copy.deepcopy(model), data.parts["train"], data.parts["valid"], data.targets, task.trainer, plan, kept,
              Silent())

    # the job goes by file: torch.multiprocessing would otherwise share the tensors (the weights too) between them
    torch.save(job, tmp_path / "job.pt")
    torch.multiprocessing.start_processes(_rank, args=(2, f"file://{tmp_path}/pg", tmp_path / "job.pt",
                                                       tmp_path / "out"), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"out.{r}", weights_only=False) for r in range(2)]
    assert ranks[0]["outcome"] == ranks[1]["outcome"]  # every rank took the same decisions
    assert ranks[0]["outcome"][:2] == (one.epochs, one.best_epoch) and ranks[0]["outcome"][3] == one.stopped
    for a, b in zip(ranks[0]["records"], kept.records):
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-4)
        assert a["valid"]["loss"] == pytest.approx(b["valid"]["loss"], rel=1e-4)
    for a, b in zip(*(r["records"] for r in ranks)):  # the values every rank decided on
        assert (a["train"], a["valid"]) == (b["train"], b["valid"])
    for k, v in one.best_state.items():
        torch.testing.assert_close(ranks[0]["weights"][k], v, rtol=1e-4, atol=1e-5)


# --- Ray Train, end to end ------------------------------------------------------------------------------------------


def _ray_leftovers() -> set[str]:
    """What is in the places Ray writes to by default."""
    found = {str(p) for p in RAY_PLACES if p.exists()}
    return found | {str(x) for p in RAY_PLACES if p.is_dir() for x in p.iterdir()}


class _RayWatch:
    """What the run's own Ray cluster could leave behind: the processes below this one when Ray shuts down, and the
    temp dirs deepstation made for it (other sessions' Ray, a doctor check say, may come and go meanwhile)."""

    def __init__(self, monkeypatch):
        import ray

        from deepstation.scale import ray as on_ray

        self.pids, self.temps = set(), []
        shutdown, mkdtemp = ray.shutdown, on_ray.tempfile.mkdtemp

        def watched_shutdown(*args, **kwargs):
            self.pids |= {pid for pid in _descendants(os.getpid()) if _is_ray(pid)}
            return shutdown(*args, **kwargs)

        def watched_mkdtemp(*args, **kwargs):
            self.temps.append(mkdtemp(*args, **kwargs))
            return self.temps[-1]

        monkeypatch.setattr(ray, "shutdown", watched_shutdown)
        monkeypatch.setattr(on_ray.tempfile, "mkdtemp", watched_mkdtemp)

    def alive(self) -> set[int]:
        from deepstation.workstation import procs

        return {pid for pid in self.pids if procs.read(pid) is not None}


def _is_ray(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return args.startswith("ray::") or "/ray/" in args


def _descendants(root: int) -> set[int]:
    from deepstation.workstation import procs

    children: dict = {}
    for p in procs.live():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _wait_until(check, timeout: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@needs_ray
def test_two_ray_workers_survive_a_killed_worker_and_match_one_process(table_csv, tmp_path, monkeypatch):
    """Rank 1 is SIGKILLed once as it records epoch 2; Ray restarts both workers, rank 0 resumes from the last
    checkpoint, and the run ends as a single process would: every epoch once, the same losses and test metrics.
    One local cluster, started for the run and gone after; nothing under /tmp/ray, ~/.ray or ~/ray_results."""
    raw = table_task(table_csv, epochs=4)
    one = deepstation.train(raw)
    before, watch = _ray_leftovers(), _RayWatch(monkeypatch)
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("DEEPSTATION_TEST_KILL_WORKER", f"1:2:{marker}")
    result = cli("train", write_task(tmp_path, {**raw, "scale": {"workers": 2, "max_failures": 2}}), "--json",
                 check=0)
    two = last_json(result.stdout)

    assert marker.exists(), "the test hook did not kill rank 1"
    s = two["scale"]
    assert s["workers"] == 2 and s["ray"] and s["address"] == "local" and s["restarts"] >= 1
    assert (s["global_batch"], s["per_worker_batch"]) == (32, 16)
    history = _history(two["run_dir"])
    assert [ln["epoch"] for ln in history] == [1, 2, 3, 4]  # none lost, none twice
    for a, b in zip(history, _history(one.dir)):  # batch: global is the same optimisation as one process
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-3)
        assert a["valid"]["loss"] == pytest.approx(b["valid"]["loss"], rel=1e-3)
    assert two["metrics"]["test"]["mae"] == pytest.approx(one.metrics["test"]["mae"], rel=1e-3)
    assert two["best_epoch"] == one.summary["best_epoch"]
    ray_dir = Path(two["run_dir"]) / "ray"
    assert not ray_dir.exists(), sorted(map(str, ray_dir.rglob("*")))  # Ray's temp dir and storage tidied away
    assert watch.pids, "no Ray process was seen at shutdown"
    assert _wait_until(lambda: not watch.alive()), watch.alive()  # every process of the local cluster ended
    assert not [t for t in watch.temps if Path(t).exists()]  # the short temp dir, if one was needed, is gone
    assert not _ray_leftovers() - before


@needs_ray
@pytest.mark.slow
def test_an_existing_cluster_is_used_and_left_running(table_csv, tmp_path, monkeypatch):
    """--ray-address: the run connects to a cluster it did not start, and leaves it as it was."""
    import tempfile

    import ray

    temp = tempfile.mkdtemp(prefix="ds-ray-")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        result = cli("train", write_task(tmp_path, table_task(table_csv, epochs=2)), "--workers", "2",
                     "--ray-address", address, "--json", subprocess_=True, check=0)
        summary = last_json(result.stdout)
        s = summary["scale"]
        assert (s["workers"], s["address"], s["restarts"]) == (2, address, 0)
        assert not (Path(summary["run_dir"]) / "ray").exists()
        assert ray.cluster_resources()["CPU"] == 2  # still up
    finally:
        ray.shutdown()
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
