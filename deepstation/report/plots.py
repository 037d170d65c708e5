"""matplotlib figures as inline PNGs (base64), so a report is one file that opens anywhere."""
from __future__ import annotations

import base64
import io

import numpy as np


def _figure(width=6.0, height=3.2, rows=1, cols=1):
    # a Figure of its own, outside pyplot: no display needed, and the backend a notebook uses stays as it is
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots(rows, cols)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def learning_curves(history: list[dict], monitor: str) -> str:
    """Loss per epoch (train, valid) and, beside it, the monitored validation metric or the learning rate."""
    fig, (left, right) = _figure(9, 3.2, cols=2)
    epochs = [h["epoch"] for h in history]
    left.plot(epochs, [h["train"]["loss"] for h in history], label="train")
    if history and "valid" in history[0]:
        left.plot(epochs, [h["valid"]["loss"] for h in history], label="valid")
    left.set_title("loss")
    left.set_yscale("log")
    left.legend()
    if monitor != "loss" and history and "valid" in history[0]:
        right.plot(epochs, [h["valid"].get(monitor) for h in history], color="tab:green")
        right.set_title(f"valid {monitor}")
    else:
        right.plot(epochs, [h["lr"] for h in history], color="tab:gray")
        right.set_title("learning rate")
    for ax in (left, right):
        ax.set_xlabel("epoch")
    return _png(fig)


def confusion(true: list, pred: list, labels: list) -> str:
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, pred):
        if t in index and p in index:
            matrix[index[t], index[p]] += 1
    size = min(2 + 0.35 * len(labels), 9)
    fig, ax = _figure(size, size)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(x) for x in labels], rotation=90)
    ax.set_yticks(range(len(labels)), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 15:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if matrix[i, j]:
                    ax.text(j, i, matrix[i, j], ha="center", va="center",
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    return _png(fig)


def image_samples(images: np.ndarray, captions: list[str]) -> str:
    """images: [N, C, H, W] in 0..1; one row of captions under each."""
    h, w = images.shape[2:]
    cols = 2 if w > 2 * h else 4
    rows = (len(images) + cols - 1) // cols
    fig, axes = _figure(cols * max(2.2, 1.1 * w / h), rows * 1.9, rows, cols)
    axes = np.atleast_1d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions):
        ax.imshow(np.moveaxis(image, 0, -1).squeeze(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(caption, fontsize=7)
    return _png(fig)


def forecast(history: np.ndarray, truth: np.ndarray, predictions: dict[str, np.ndarray], labels=None,
             band=None, title=None) -> str:
    """The history, the held-out truth, each method's forecast and, with `band` (lower, upper), the deep model's
    prediction interval."""
    fig, ax = _figure(9, 3.2)
    n = len(history)
    x_hist, x_future = np.arange(n), np.arange(n, n + len(truth))
    ax.plot(x_hist, history, color="black", lw=1, label="history")
    ax.plot(x_future, truth, color="black", lw=2, label="held-out truth")
    if band is not None:
        ax.fill_between(x_future, band[0], band[1], color="tab:blue", alpha=0.2, label="deep interval")
    if title:
        ax.set_title(title, fontsize=9)
    for name, values in predictions.items():
        ax.plot(x_future, values, lw=1.5, label=name)
    if labels is not None:
        step = max(1, (n + len(truth)) // 10)
        ticks = list(range(0, n + len(truth), step))
        ax.set_xticks(ticks, [str(labels[i]) for i in ticks], rotation=30, fontsize=7)
    ax.legend(fontsize=8)
    return _png(fig)
