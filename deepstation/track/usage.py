"""Usage metering: wall time, device kind and count, device-seconds and an estimated cost per run; and the
sums `deepstation usage` prints."""
from __future__ import annotations

from datetime import datetime, timezone

from deepstation.track.rates import rate_for

BY = ("user", "project", "device", "month")


def device_of(device: str, workers=None, gpus_per_worker=None) -> tuple[str, int]:
    """(kind, count) for a run on `device` ("cpu", "cuda", "cuda:1", "mps"). A GPU's kind is its name from
    torch; a scaled run counts workers x GPUs per worker; the CPU counts the threads torch uses."""
    workers = int(workers) if isinstance(workers, (int, float)) and workers else 1
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        try:
            kind = torch.cuda.get_device_name(index)
        except Exception:  # no driver in this process (a run on Ray workers): the name is not known here
            kind = "cuda"
        per_worker = gpus_per_worker if gpus_per_worker else 1
        return kind, max(1, round(workers * per_worker))
    if device.startswith("mps"):
        return "mps", workers
    import torch

    return "cpu", workers * torch.get_num_threads()


def measure(wall_seconds: float, kind: str, count: int, table: dict | None = None) -> dict:
    """The usage of one run: metrics (usage.*) and tags, ready for the store and tracking.json."""
    rate = rate_for(kind, table)
    device_seconds = wall_seconds * count
    found = {"wall_seconds": round(wall_seconds, 3), "device_seconds": round(device_seconds, 3),
             "device_kind": kind, "device_count": int(count), "rate_usd_per_hour": rate}
    found["cost_usd"] = round(device_seconds / 3600 * rate, 6) if rate is not None else None
    return found


def as_metrics(usage: dict) -> dict:
    return {f"usage.{k}": usage[k] for k in ("wall_seconds", "device_seconds", "cost_usd")
            if usage.get(k) is not None}


def as_tags(usage: dict) -> dict:
    return {"usage.device_kind": str(usage["device_kind"]), "usage.device_count": str(usage["device_count"])}


def summarise(runs: list, experiments: dict, by: str = "user", since: datetime | None = None) -> list[dict]:
    """Sum the usage of MLflow runs by user, project (experiment), device kind or month (of the start)."""
    groups: dict = {}
    for run in runs:
        metrics, tags = run.data.metrics, run.data.tags
        if "usage.wall_seconds" not in metrics:
            continue
        started = datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc)
        if since is not None and started < since:
            continue
        key = {"user": tags.get("mlflow.user") or run.info.user_id or "?",
               "project": experiments.get(run.info.experiment_id, run.info.experiment_id),
               "device": tags.get("usage.device_kind", "?"),
               "month": started.strftime("%Y-%m")}[by]
        row = groups.setdefault(key, {by: key, "runs": 0, "wall_hours": 0.0, "device_hours": 0.0,
                                      "cost_usd": 0.0, "unpriced_runs": 0})
        row["runs"] += 1
        row["wall_hours"] += metrics["usage.wall_seconds"] / 3600
        row["device_hours"] += metrics.get("usage.device_seconds", 0.0) / 3600
        if "usage.cost_usd" in metrics:
            row["cost_usd"] += metrics["usage.cost_usd"]
        else:
            row["unpriced_runs"] += 1
    rows = sorted(groups.values(), key=lambda r: (-r["cost_usd"], str(r[by])))
    for row in rows:
        for k in ("wall_hours", "device_hours"):
            row[k] = round(row[k], 9)  # to the millisecond: short runs' hours stay exact enough to price
        row["cost_usd"] = round(row["cost_usd"], 6)
    return rows
