"""PyTorch on the CPU: a forward and backward step of a tiny model, and the matmul rate it reaches."""
from __future__ import annotations

import time

from deepstation.workstation.checks import Context, check, fail, ok

FIX = "reinstall torch: `make setup` (pip install -c constraints.txt torch)"


@check("torch-cpu", timeout=30, quick=15, fix=FIX)
def torch_cpu(ctx: Context) -> dict:
    import torch

    loss, grads_finite = train_step(torch.device("cpu"))
    measured = {"torch": torch.__version__, "threads": torch.get_num_threads(), "loss": round(loss, 4)}
    if not grads_finite:
        return fail("a forward/backward step of a tiny model gave non-finite gradients", FIX, measured)
    n = 512 if ctx.quick else 1024
    measured["matmul_n"] = n
    measured["matmul_gflops"] = round(matmul_rate(torch.device("cpu"), torch.float32, n, seconds=0.2 if ctx.quick
                                                  else 0.5) / 1e9, 1)
    return ok(f"torch {torch.__version__}: forward/backward ok; fp32 matmul {measured['matmul_gflops']:.1f} GFLOP/s "
              f"({n}x{n}, {measured['threads']} threads)", measured)


def train_step(device, autocast_dtype=None) -> tuple[float, bool]:
    """One SGD step of a tiny MLP on random data: (loss, every gradient finite and some non-zero). The update is
    written out: building a torch.optim optimiser first imports torch._dynamo, seconds of start-up."""
    import torch
    from contextlib import nullcontext

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)).to(device)
    x, y = torch.randn(16, 32, device=device), torch.randint(0, 4, (16,), device=device)
    ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    with ctx:
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    finite = all(g is not None and bool(torch.isfinite(g).all()) for g in grads) and any(bool(g.abs().sum() > 0)
                                                                                      for g in grads)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    return float(loss.detach().float()), finite


def matmul_rate(device, dtype, n: int, seconds: float = 0.5, sync=lambda: None) -> float:
    """FLOP/s of an n x n x n matmul, repeated for about `seconds` after one warm-up call."""
    import torch

    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    sync()
    reps, began = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        reps += 1
        if reps % 4 == 0 or reps == 1:
            sync()
            elapsed = time.perf_counter() - began
            if elapsed >= seconds:
                return 2 * n**3 * reps / elapsed
