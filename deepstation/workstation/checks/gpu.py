"""Each CUDA GPU: what it is, a mixed-precision training step on it, and how much of its datasheet peak it delivers
(dense matmul in fp32, tf32 and bf16/fp16; memory bandwidth), plus host-to-device bandwidth from pinned memory;
with two GPUs or more, an NCCL all-reduce across them. One row per GPU: a GPU that fails does not stop the others.

The functions that touch the device (train_step, time_matmul, host_to_device, device_copy, allreduce) are module
attributes, so tests on a CPU machine patch them along with the torch.cuda queries."""
from __future__ import annotations

import json
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from deepstation.workstation import gpuspecs
from deepstation.workstation.checks import Context, check, fail, first_line, ok, skip, warn
from deepstation.workstation.checks.torch_cpu import matmul_rate, train_step

FIX = ("check the card and driver with `nvidia-smi`; install a torch build for this driver's CUDA "
       "(https://pytorch.org/get-started/locally/)")
WARN_FRACTION = 0.5  # below this fraction of the datasheet peak, a measurement is a warning


def no_gpu(ctx: Context) -> dict | None:
    """Settles the check in the doctor's own process when there is no GPU, so no child process is started."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return None
    if torch.version.cuda:
        why = f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but sees no usable GPU or driver"
        fix = "if this machine has an NVIDIA GPU, check `nvidia-smi` and CUDA_VISIBLE_DEVICES"
    else:
        why, fix = f"torch {torch.__version__} is a CPU-only build", None
    return skip(f"no CUDA GPU ({why})", {"torch": torch.__version__, "cuda_build": torch.version.cuda}, fix)


@check("gpu", timeout=150, quick=90, fix=FIX, isolate=True, precheck=no_gpu)
def gpus(ctx: Context) -> list[dict]:
    import torch

    settled = no_gpu(ctx)
    if settled is not None:
        return [settled]
    count = torch.cuda.device_count()
    driver = driver_version()
    rows = []
    for index in range(count):
        try:
            rows.append(one_gpu(index, ctx, driver))
        except Exception as err:  # noqa: BLE001 (this GPU's row fails; the next GPU is still checked)
            rows.append(fail(first_line(err), FIX, {"index": index}, name=f"gpu:{index}"))
    if count >= 2:
        try:
            rows.append(nccl_row(count, ctx))
        except Exception as err:  # noqa: BLE001
            rows.append(fail(first_line(err), "check `nvidia-smi topo -m` and NCCL_DEBUG=INFO output; "
                                              "the GPUs must see each other", name="nccl"))
    return rows


def one_gpu(index: int, ctx: Context, driver: str | None) -> dict:
    import torch

    name = torch.cuda.get_device_name(index)
    props = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    spec = gpuspecs.lookup(name)
    row = f"gpu:{index}"
    measured = {"index": index, "name": name, "card": spec.card if spec else None,
                "memory_gib": round(total / 2**30, 1), "free_gib": round(free / 2**30, 1),
                "capability": f"{props.major}.{props.minor}", "driver": driver, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version()}
    missing = missing_arch(props.major, props.minor)
    if missing:
        return fail(f"{name}: {missing}", "install an older torch build that still supports this card, or use a "
                    "newer card", measured, name=row)

    half = "bf16" if props.major >= 8 else "fp16"  # bf16 needs Ampere (8.0) or newer
    device = torch.device("cuda", index)
    loss, finite = train_step(device, torch.bfloat16 if half == "bf16" else torch.float16)
    measured["step"] = {"precision": half, "loss": round(loss, 4), "finite": finite}
    if not finite:
        return fail(f"{name}: a {half} autocast training step gave non-finite gradients", FIX, measured, name=row)

    n, seconds = (4096, 0.2) if ctx.quick else (8192, 0.5)
    kinds = ["fp32"] + (["tf32"] if props.major >= 8 else []) + [half]
    measured["matmul_n"] = n
    measured["tflops"] = {kind: round(time_matmul(device, kind, n, seconds) / 1e12, 1) for kind in kinds}
    size = 64 if ctx.quick else 256
    measured["h2d_gbs"] = round(host_to_device(device, size) / 1e9, 1)
    measured["copy_gbs"] = round(device_copy(device, size * 4) / 1e9, 0)

    measured["fraction"] = fractions(spec, measured["tflops"], measured["copy_gbs"])
    low = {k: f for k, f in measured["fraction"].items() if f is not None and f < WARN_FRACTION}
    rates = ", ".join(f"{k} {v:g}" for k, v in measured["tflops"].items())
    shares = ", ".join(f"{k} {f:.0%}" for k, f in measured["fraction"].items() if f is not None)
    card = (f"{spec.card}: {shares} of datasheet peak" if spec else
            f"unknown card: `{name}` is not in the spec table, no peak to compare")
    detail = (f"{name}, {measured['memory_gib']:g} GiB, driver {driver or '?'}, CUDA {torch.version.cuda}; "
              f"{half} step ok; TFLOP/s {rates}; H2D {measured['h2d_gbs']:g} GB/s; {card}")
    if low:
        return warn(detail, measured, "below half of peak: check `nvidia-smi -q -d PERFORMANCE,CLOCK,POWER` for "
                                      "throttling, other processes on the GPU, and the power limit", name=row)
    return ok(detail, measured, name=row)


def fractions(spec, tflops: dict, copy_gbs: float) -> dict:
    """Measured / datasheet peak per measurement; None where the card or the peak is unknown."""
    if spec is None:
        return {k: None for k in [*tflops, "bandwidth"]}
    peaks = {"fp32": spec.fp32, "tf32": spec.tf32, "bf16": spec.tensor16, "fp16": spec.tensor16}
    out = {k: (round(v / peaks[k], 3) if peaks.get(k) else None) for k, v in tflops.items()}
    out["bandwidth"] = round(copy_gbs / spec.bandwidth, 3) if spec.bandwidth else None
    return out


def missing_arch(major: int, minor: int) -> str | None:
    """Why this torch build cannot run kernels on a card of this compute capability, or None."""
    import torch

    archs = [int(a.split("_")[1]) for a in torch.cuda.get_arch_list() if a.startswith("sm_") and a[3:].isdigit()]
    if archs and major * 10 + minor < min(archs):
        return (f"compute capability {major}.{minor} is older than this torch build supports "
                f"(oldest: sm_{min(archs)})")
    return None


@contextmanager
def _fp32_matmul(kind: str):
    """fp32 matmuls in IEEE fp32 or on the tensor cores (tf32), restored afterwards."""
    import torch

    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):  # torch >= 2.9
        old = m.fp32_precision
        m.fp32_precision = "tf32" if kind == "tf32" else "ieee"
        try:
            yield
        finally:
            m.fp32_precision = old
    else:
        old = m.allow_tf32
        m.allow_tf32 = kind == "tf32"
        try:
            yield
        finally:
            m.allow_tf32 = old


def time_matmul(device, kind: str, n: int, seconds: float) -> float:
    """FLOP/s of an n x n x n matmul on the GPU in fp32, tf32, bf16 or fp16."""
    import torch

    dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[kind]
    with torch.cuda.device(device), _fp32_matmul(kind):
        return matmul_rate(device, dtype, n, seconds, sync=torch.cuda.synchronize)


def host_to_device(device, mib: int) -> float:
    """Bytes/s copying a pinned host buffer to the GPU (best of 5)."""
    import torch

    host = torch.empty(mib * 2**20, dtype=torch.uint8).pin_memory()
    dev = torch.empty_like(host, device=device)
    best = float("inf")
    for _ in range(6):
        torch.cuda.synchronize(device)
        began = time.perf_counter()
        dev.copy_(host, non_blocking=True)
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - began)
    return host.numel() / best


def device_copy(device, mib: int) -> float:
    """Device memory bandwidth, bytes/s, of a device-to-device copy (each byte read once and written once)."""
    import torch

    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize(device)
    reps, began = 10, time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize(device)
    return 2 * src.numel() * reps / (time.perf_counter() - began)


def driver_version() -> str | None:
    from deepstation.workstation.envsnap import nvidia_smi

    return nvidia_smi().get("driver")


def nccl_row(count: int, ctx: Context) -> dict:
    mib = 64 if ctx.quick else 256
    got = allreduce(count, mib)
    measured = {"gpus": count, "mib": mib, **got}
    if not got["correct"]:
        return fail(f"NCCL all-reduce across {count} GPUs gave a wrong sum", "check NCCL_DEBUG=INFO output and "
                    "`nvidia-smi topo -m`", measured, name="nccl")
    return ok(f"NCCL all-reduce of {mib} MiB across {count} GPUs: bus bandwidth {got['busbw_gbs']:g} GB/s",
              measured, name="nccl")


def allreduce(count: int, mib: int) -> dict:
    """An all-reduce with one spawned process per GPU: {"correct", "seconds", "busbw_gbs"} from rank 0."""
    import torch.multiprocessing as mp

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="ds-nccl-") as out:
        mp.spawn(_allreduce_worker, args=(count, port, mib, out), nprocs=count, join=True)
        return json.loads((Path(out) / "rank0.json").read_text())


def _allreduce_worker(rank: int, world: int, port: int, mib: int, out: str) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        check_sum = torch.full((1024,), float(rank + 1), device="cuda")
        dist.all_reduce(check_sum)
        correct = bool((check_sum == world * (world + 1) / 2).all())
        x = torch.ones(mib * 2**20 // 4, device="cuda")
        dist.all_reduce(x)  # warm-up: NCCL sets up its rings here
        torch.cuda.synchronize()
        reps, began = 5, time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - began) / reps
        if rank == 0:
            busbw = 2 * (world - 1) / world * x.numel() * 4 / seconds / 1e9
            Path(out, "rank0.json").write_text(json.dumps(
                {"correct": correct, "seconds": round(seconds, 5), "busbw_gbs": round(busbw, 1)}))
    finally:
        dist.destroy_process_group()
