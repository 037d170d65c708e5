"""Image inputs: decoded with Pillow, brought to one size, scaled to 0..1, normalised per channel on the training rows.

A column holds paths (relative to the index file's folder) or, for built-in sets, arrays already in 0..1.
An image of another size than the target (`size`, or the first image's) is padded, cropped or stretched to it
(`resize`); the codec counts them, and its state and notes() say how many and what was done.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deepstation.data.sources import decode_rows, resolve_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
DONE = {"pad": "scaled to fit and padded with black, keeping their aspect ratio",
        "crop": "scaled to cover and cut to the centre, keeping their aspect ratio",
        "stretch": "stretched to fit, not keeping their aspect ratio"}


class ImageCodec:
    def __init__(self, spec, state: dict | None = None):
        self.spec = spec
        self.state = state
        self.size = tuple(state["size"]) if state else (tuple(spec.size) if spec.size else None)
        self.channels = state["channels"] if state else spec.channels
        # a run from before `resize` existed stretched every image: its state has no "resize"
        self.resize = state.get("resize", "stretch") if state else spec.resize
        self.seen: dict = {}

    def columns(self) -> dict[str, str]:
        return {self.spec.column: f"inputs.{self.spec.name}.column"}

    def read(self, table, on_bad_sample="error"):
        """Decode every row: ([N, C, H, W] float32 in 0..1, mask of rows that could not be decoded)."""
        self.seen = {}  # (height, width) -> images of that size, before resizing
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
            if array.shape[0] != self.channels:
                array = array.mean(axis=0, keepdims=True) if self.channels == 1 else np.repeat(array[:1], 3, axis=0)
            return self._sized(array)
        import io

        from PIL import Image

        source = io.BytesIO(value) if isinstance(value, bytes) else resolve_file(value, base_dir, "an image")
        with Image.open(source) as im:  # a path, or a file's bytes (a request to `deepstation serve`)
            im.load()
            if self.channels is None:
                self.channels = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
            im = im.convert("L" if self.channels == 1 else "RGB")
            array = np.asarray(im, dtype=np.float32) / 255.0
        return self._sized(array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0))

    def _sized(self, array: np.ndarray) -> np.ndarray:
        """[C, h, w] -> [C, H, W] at the target size, by self.resize; counted by its size as it came."""
        found = tuple(array.shape[1:])
        if self.size is None:
            self.size = found
        self.seen[found] = self.seen.get(found, 0) + 1
        if found == self.size:
            return array
        return np.stack([resize_plane(plane, self.size, self.resize) for plane in array])

    def fit(self, raw) -> None:
        axes = (0, 2, 3)
        std = raw.std(axis=axes) if len(raw) else np.ones(self.channels)
        self.state = {"size": list(self.size), "channels": self.channels, "resize": self.resize,
                      "mean": raw.mean(axis=axes).tolist() if len(raw) else [0.0] * self.channels,
                      "std": np.where(std > 0, std, 1.0).tolist()}
        other = {size: n for size, n in self.seen.items() if size != self.size}
        if other:  # every row read (all splits), not only the training ones
            h, w = self.size
            self.state["resized"] = {"count": sum(other.values()), "of": sum(self.seen.values()), "how": self.resize,
                                     "sizes": len(self.seen),
                                     "other_aspect": sum(n for (a, b), n in other.items() if a * w != b * h)}

    def notes(self) -> list[str]:
        """One line when the images were not all of the target size and resizing changed more than their scale:
        their sizes vary, or some have another aspect ratio than the target (for the run's summary)."""
        resized = (self.state or {}).get("resized")
        if not resized or (resized["sizes"] < 2 and not resized["other_aspect"]):
            return []
        h, w = self.state["size"]
        return [f"inputs.{self.spec.name}: {resized['count']} of {resized['of']} images were not {h}x{w} (height x "
                f"width); {DONE[resized['how']]} (set inputs.{self.spec.name}.size or resize: stretch | pad | crop "
                f"to choose)"]

    def encode(self, raw) -> dict:
        import torch

        mean = np.asarray(self.state["mean"], dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.state["std"], dtype=np.float32)[None, :, None, None]
        return {"x": torch.from_numpy(np.ascontiguousarray((raw - mean) / std, dtype=np.float32))}

    def shape(self) -> dict:
        return {"type": "image", "channels": self.state["channels"], "size": self.state["size"]}


def resize_plane(plane: np.ndarray, size: tuple, how: str) -> np.ndarray:
    """One channel [h, w] (float) -> [H, W]: stretched; or scaled to fit inside, keeping the aspect ratio, and
    centred on black (pad); or scaled to cover, keeping the aspect ratio, and its centre cut out (crop)."""
    from PIL import Image

    (h, w), (H, W) = plane.shape, size
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    if how == "stretch":
        return np.asarray(im.resize((W, H), Image.BILINEAR))
    scale = min(H / h, W / w) if how == "pad" else max(H / h, W / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if how == "pad":
        nh, nw = min(nh, H), min(nw, W)
    else:
        nh, nw = max(nh, H), max(nw, W)
    scaled = np.asarray(im.resize((nw, nh), Image.BILINEAR))
    if how == "crop":
        top, left = (nh - H) // 2, (nw - W) // 2
        return scaled[top:top + H, left:left + W].copy()
    out = np.zeros((H, W), dtype=np.float32)
    top, left = (H - nh) // 2, (W - nw) // 2
    out[top:top + nh, left:left + nw] = scaled
    return out


def _reason(err: Exception) -> str:
    if isinstance(err, FileNotFoundError):
        return "file not found"
    text = str(err).split(":")[0].split(" <_io.BytesIO")[0].strip() if str(err) else type(err).__name__
    return text[0].lower() + text[1:] if text else type(err).__name__
