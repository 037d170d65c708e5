"""Checkpoints: written whole then renamed into place; read back with weights_only, never unpickling code."""
from __future__ import annotations

import io
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
