"""Checkpoints: written whole then renamed into place; read back with weights_only, never unpickling code.

Writing happens on a background thread (`Writer`) from a snapshot taken at the end of the epoch, so the next
epoch starts at once: on small models the write would otherwise cost more than the epoch's last steps.
"""
from __future__ import annotations

import io
import threading
from pathlib import Path

import torch

from deepstation import files
from deepstation.errors import DeepstationError


def save(path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # rename is atomic: a kill at any moment leaves the previous checkpoint or this one, whole
    files.write_bytes(path, buffer.getvalue(), sync=False)


def load(path, map_location="cpu") -> dict:
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as err:
        raise DeepstationError(f"{path}: checkpoint not found; the run has not finished an epoch") from err
    except Exception as err:  # a truncated or foreign file
        raise DeepstationError(f"{path}: not a readable checkpoint ({type(err).__name__}); "
                               f"delete it and resume from an earlier one, or train again") from err


def snapshot(tree):
    """A CPU copy of every tensor in nested dicts/lists, so training can go on changing the originals."""
    if isinstance(tree, dict):
        return {k: snapshot(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(snapshot(v) for v in tree)
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    return tree


class Writer:
    """One background thread writing (path, state) pairs in order; at most one batch in flight.

    submit() waits for the previous batch first, so writes never pile up or reorder; wait() surfaces a failed
    write (a full disk, say) as an exception in the training thread.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, *writes: tuple) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(writes,), name="deepstation-checkpoint",
                                        daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write(self, writes) -> None:
        try:
            for path, state in writes:
                save(path, state)
        except BaseException as err:  # handed to the training thread by wait()
            self._error = err
