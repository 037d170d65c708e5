"""Batches of nested feature dicts ({input: {part: tensor}}) without a DataLoader: the data is in memory."""
from __future__ import annotations


def take(tree, index):
    """Rows `index` (a tensor of positions or a slice) of every tensor in a dict of dicts."""
    if isinstance(tree, dict):
        return {k: take(v, index) for k, v in tree.items()}
    return tree[index]


def to_device(tree, device):
    if isinstance(tree, dict):
        return {k: to_device(v, device) for k, v in tree.items()}
    return tree.to(device, non_blocking=True)


def rows(tree) -> int:
    while isinstance(tree, dict):
        tree = next(iter(tree.values()))
    return tree.shape[0]
