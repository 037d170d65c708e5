"""What the training loop shares between data-parallel processes, as an object that does nothing in one process.

The loop (deepstation.training.loop.fit) asks the same six things whether it runs alone or as one of N DDP
processes: wrap the model, which rows are mine this epoch, the mean of a tensor over processes, run this on rank 0
and give everyone its answer, and does anyone want to stop. `ALONE` answers them for one process at no cost;
`Group` answers them with torch.distributed, whichever launcher (Ray Train, torchrun) set the process group up.
"""
from __future__ import annotations

import math


class Alone:
    """One process: all the rows are mine, every mean is my own value, rank 0 is me."""

    rank, size = 0, 1

    def wrap(self, model):
        return model

    def rows(self, n: int) -> int:
        return n

    def shard(self, order):
        return order

    def mean(self, values):
        return values

    def rank0(self, fn, *args):
        return fn(*args)

    def share(self, obj):
        return obj

    def any(self, flag: bool) -> bool:
        return flag


ALONE = Alone()


class Group(Alone):
    """N processes of one torch.distributed group, each holding every row in memory and training on its shard.

    Sharding: rank r takes positions r, r+N, r+2N, ... of the epoch's shuffled order (the same order everywhere:
    the shuffle generator is seeded alike). With a per-worker batch b, step s of all ranks together covers
    positions s*b*N to (s+1)*b*N of that order: exactly the batch of one process with batch size b*N, and DDP
    averages the gradients as that process would. The order is padded by wrapping around, as
    torch's DistributedSampler does, so every rank takes the same number of steps.

    BatchNorm layers become SyncBatchNorm on GPUs, so batch statistics span the global batch; torch has no CPU
    SyncBatchNorm, so on CPUs each worker normalises over its own share. Every rank starts from the same random
    state (the driver's, or the checkpoint's), as one process would.
    """

    def __init__(self, device):
        import torch.distributed as dist

        self.dist, self.device = dist, device
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def wrap(self, model):
        import torch
        from torch.nn.parallel import DistributedDataParallel

        if self.size == 1:  # nothing to average with
            return model
        if self.device.type == "cuda":  # batch statistics over the global batch, as one process has them (GPU only)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # buffers (BatchNorm's running statistics) are synced once, here; after that only rank 0's matter, since
        # rank 0 alone validates and saves them, so no broadcast before every step (~15% of a small CNN's epoch)
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       forward_sync_buffers=False)

    def rows(self, n: int) -> int:
        return math.ceil(n / self.size)

    def shard(self, order):
        import torch

        total = self.rows(len(order)) * self.size
        if total > len(order):
            order = order[torch.arange(total) % len(order)]
        return order[self.rank::self.size]

    def mean(self, values):
        values = values.clone()
        self.dist.all_reduce(values)
        return values / self.size

    def rank0(self, fn, *args):
        """fn(*args) on rank 0 only (the others wait), its result on every rank."""
        return self.share(fn(*args) if self.rank == 0 else None)

    def share(self, obj):
        box = [obj]
        self.dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def any(self, flag: bool) -> bool:
        import torch

        votes = torch.tensor([float(flag)], device=self.device)
        self.dist.all_reduce(votes, op=self.dist.ReduceOp.MAX)
        return bool(votes.item())
