"""Image inputs: decoded with Pillow, resized, scaled to 0..1, normalised per channel on the training rows.

A column holds paths (relative to the index file's folder) or, for built-in sets, arrays already in 0..1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deepstation.data.sources import decode_rows, resolve_file
from deepstation.errors import DeepstationError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageCodec:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state
        self.size = tuple(state["size"]) if state else (tuple(spec.size) if spec.size else None)
        self.channels = state["channels"] if state else spec.channels

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"inputs.{self.spec.name}.column"}

    def read(self, table, on_bad_sample="error"):
        """Decode every row: ([N, C, H, W] float32 in 0..1, mask of rows that could not be decoded)."""
        # PIL's UnidentifiedImageError is an OSError
        images, bad = decode_rows(table, self.spec.column, self._decode, "image", (OSError, ValueError), _reason,
                                  on_bad_sample)
        if self.size is None:  # nothing decoded: every row was bad
            return np.zeros((len(images), 1, 1, 1), dtype=np.float32), bad
        blank = np.zeros((self.channels, *self.size), dtype=np.float32)
        return np.stack([blank if im is None else im for im in images]), bad

    def _decode(self, value, base_dir: Path) -> np.ndarray:
        if isinstance(value, np.ndarray):
            array = value.astype(np.float32)
            array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
            if self.channels is None:
                self.channels = 1 if array.shape[0] == 1 else 3
            if self.size is None:
                self.size = tuple(array.shape[1:])
            return self._fit_array(array)
        import io

        from PIL import Image

        source = io.BytesIO(value) if isinstance(value, bytes) else resolve_file(value, base_dir, "an image")
        with Image.open(source) as im:  # a path, or a file's bytes (a request to `deepstation serve`)
            im.load()
            if self.channels is None:
                self.channels = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
            if self.size is None:
                self.size = (im.height, im.width)
            im = im.convert("L" if self.channels == 1 else "RGB")
            if (im.height, im.width) != self.size:
                im = im.resize((self.size[1], self.size[0]), Image.BILINEAR)
            array = np.asarray(im, dtype=np.float32) / 255.0
        return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)

    def _fit_array(self, array: np.ndarray) -> np.ndarray:
        from PIL import Image

        if array.shape[0] != self.channels:
            array = array.mean(axis=0, keepdims=True) if self.channels == 1 else np.repeat(array[:1], 3, axis=0)
        if tuple(array.shape[1:]) != self.size:
            array = np.stack([np.asarray(Image.fromarray(c, mode="F").resize((self.size[1], self.size[0]),
                                                                           Image.BILINEAR)) for c in array])
        return array

    def fit(self, raw) -> None:
        axes = (0, 2, 3)
        std = raw.std(axis=axes) if len(raw) else np.ones(self.channels)
        self.state = {"size": list(self.size), "channels": self.channels,
                      "mean": raw.mean(axis=axes).tolist() if len(raw) else [0.0] * self.channels,
                      "std": np.where(std > 0, std, 1.0).tolist()}

    def encode(self, raw) -> dict:
        import torch

        mean = np.asarray(self.state["mean"], dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.state["std"], dtype=np.float32)[None, :, None, None]
        return {"x": torch.from_numpy(np.ascontiguousarray((raw - mean) / std, dtype=np.float32))}

    def shape(self) -> dict:
        return {"type": "image", "channels": self.state["channels"], "size": self.state["size"]}


def _reason(err: Exception) -> str:
    if isinstance(err, FileNotFoundError):
        return "file not found"
    text = str(err).split(":")[0].split(" <_io.BytesIO")[0].strip() if str(err) else type(err).__name__
    return text[0].lower() + text[1:] if text else type(err).__name__
