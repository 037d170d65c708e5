"""Where the matrix work runs and in which precision, as objects that do nothing when not needed."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from deepstation.errors import DeepstationError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Plan:
    device: torch.device
    precision: str  # fp32 | bf16 | fp16

    def autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler:
        # fp16 needs loss scaling to keep small gradients; bf16 has fp32's range and does not
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def describe(self) -> str:
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)}), {self.precision}"
        return f"{self.device}, {self.precision}"


def plan(device: str = "auto", precision: str = "auto") -> Plan:
    dev = resolve_device(device)
    return Plan(dev, resolve_precision(precision, dev))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeepstationError(f"trainer.device: `{requested}` was asked for but no CUDA GPU is usable here "
                                   f"(torch {torch.__version__}, {build}); use --device cpu or device: auto")
        index = int(requested.split(":")[1]) if ":" in requested else torch.cuda.current_device()
        count = torch.cuda.device_count()
        if index >= count:
            raise DeepstationError(f"trainer.device: `{requested}` does not exist; this machine has {count} GPU(s), "
                                   f"cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    if requested == "mps" and not _mps_available():
        raise DeepstationError("trainer.device: `mps` was asked for but Apple's Metal backend is not available here; "
                               "use --device cpu or device: auto")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    if device.type == "cuda":
        bf16 = torch.cuda.get_device_capability(device)[0] >= 8  # Ampere and newer
        if requested == "auto":
            return "bf16" if bf16 else "fp16"
        if requested == "bf16" and not bf16:
            name = torch.cuda.get_device_name(device)
            raise DeepstationError(f"trainer.precision: bf16 needs a GPU of compute capability 8.0 or newer; {name} "
                                   f"is older; use precision: fp16 or auto")
        return requested
    if requested == "auto":
        return "fp32"
    if requested == "fp16" and device.type == "cpu":
        raise DeepstationError("trainer.precision: fp16 autocast needs a GPU; on the CPU use bf16 or fp32 (or auto)")
    return requested


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
