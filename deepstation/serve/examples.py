"""A few rows of a task's inputs made from what a trained model's codecs learned, no data read again: the pyfunc
flavour's input example, and the request a server answers before it says it is ready. Apart from mlflow, so that
`deepstation serve` needs none."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

EXAMPLE_ROWS = 3


def example_frame(task, codecs: dict):
    """A few rows of the task's input columns, made from what the codecs learned (no data is read again): tables
    at mean and mean +- std with known categories; images and audio as base64 text (a grey image, silence); a
    forecasting series a window of steps; rows that each hold a series, a sine wave of the trained length."""
    parts = [_example_columns(inp, codecs[inp.name]) for inp in task.inputs]
    if any(p is None for p in parts):
        return None
    n = max((len(next(iter(p.values()))) for p in parts if p), default=EXAMPLE_ROWS)
    columns = {}
    for part in parts:
        for name, values in part.items():
            columns[name] = values if len(values) == n else [values[i % len(values)] for i in range(n)]
    return pd.DataFrame(columns)


def _example_columns(inp, codec) -> dict | None:
    state = codec.state or {}
    if inp.type == "table":
        out = {}
        for j, column in enumerate(inp.columns):
            mean, std = state["mean"][j], state["std"][j]
            out[column] = [round(mean + k * std, 4) for k in (0, -1, 1)]
        for j, column in enumerate(inp.categorical):
            vocab = [v for v in state["vocab"][j] if v != ""] or [""]
            out[column] = [vocab[k % len(vocab)] for k in range(EXAMPLE_ROWS)]
        return out
    if inp.type == "image":
        return {inp.column: [_png(state["size"], state["channels"])] * EXAMPLE_ROWS}
    if inp.type == "audio":
        return {inp.column: [_wav(state["sample_rate"])] * EXAMPLE_ROWS}
    if inp.type == "series" and inp.window:
        n = int(state.get("length") or inp.window)
        out = {}
        if inp.id:
            out[inp.id] = [(state.get("ids") or ["a"])[0]] * n
        if inp.date:
            out[inp.date] = [d.strftime("%Y-%m-%d") for d in pd.date_range("2020-01-01", periods=n, freq="MS")]
        if inp.order:
            out[inp.order] = list(range(1, n + 1))
        for column in inp.columns:
            out[column] = [round(10.0 + 0.5 * t, 4) for t in range(n)]
        return out
    if inp.type == "series":  # each row holds a whole series: one column of lists, or one number per column
        n, channels = int(state["length"]), int(state["channels"])
        wave = [round(float(v), 4) for v in np.sin(np.linspace(0, 2 * np.pi, n))]
        if len(inp.columns) > 1:
            return {column: [wave[j]] * EXAMPLE_ROWS for j, column in enumerate(inp.columns)}
        value = wave if channels == 1 else [[v] * channels for v in wave]
        return {inp.columns[0]: [value] * EXAMPLE_ROWS}
    return None


def _png(size, channels: int) -> str:
    from PIL import Image

    image = Image.new("L" if channels == 1 else "RGB", (int(size[1]), int(size[0])), 128 if channels == 1
                      else (128, 128, 128))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _wav(rate: int, seconds: float = 0.5) -> str:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(b"\0\0" * int(rate * seconds))
    return base64.b64encode(buffer.getvalue()).decode("ascii")
