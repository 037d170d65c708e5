"""Peak figures of common NVIDIA cards, from their public datasheets, so the doctor can say what fraction of its
card a machine delivers. Every figure is dense (no structured sparsity), in TFLOP/s, and memory bandwidth in GB/s.

`tensor16` is the 16-bit tensor-core peak that a PyTorch matmul can reach: bf16 on Ampere and newer (fp16 on Volta
and Turing, which have no bf16), with fp32 accumulation, which is what cuBLAS uses for torch.matmul. GeForce cards
accumulate in fp32 at half their fp16-accumulate rate, so their row gives the fp32-accumulate figure. None means
the card has no such unit (no TF32 before Ampere, no tensor cores before Volta).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ADA = "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf"
GA102 = "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"
HOPPER = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
H200 = "https://www.nvidia.com/en-us/data-center/h200/"
A100 = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")
T4 = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
V100 = "https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"
P100 = "https://images.nvidia.com/content/tesla/pdf/nvidia-tesla-p100-PCIe-datasheet.pdf"
P100_SXM = "https://images.nvidia.com/content/pdf/tesla/whitepaper/pascal-architecture-whitepaper.pdf"
K80 = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-product-literature/"
       "Tesla-K80-BoardSpec-07317-001-v05.pdf")


@dataclass(frozen=True)
class GpuSpec:
    card: str                 # the card as its datasheet names it
    pattern: str              # regular expression on the lower-cased CUDA device name
    fp32: float               # TFLOP/s, CUDA cores
    tf32: float | None        # TFLOP/s, tensor cores
    tensor16: float | None    # TFLOP/s, bf16 (fp16 before Ampere) tensor cores, fp32 accumulate
    bandwidth: float          # GB/s, device memory
    memory_gb: float
    source: str               # the public datasheet the row comes from
    note: str = ""


# Most specific pattern first: the first row that matches a device name wins.
SPECS: list[GpuSpec] = [
    GpuSpec("H100 NVL", r"\bh100\b.*\bnvl\b", 60, 417.5, 835, 3900, 94, HOPPER),
    GpuSpec("H100 PCIe", r"\bh100\b.*\bpcie\b", 51, 378, 756, 2000, 80, HOPPER),
    GpuSpec("H100 SXM", r"\bh100\b", 67, 494.7, 989.4, 3350, 80, HOPPER),
    GpuSpec("H200 NVL", r"\bh200\b.*\bnvl\b", 60, 417.5, 835.5, 4800, 141, H200),
    GpuSpec("H200 SXM", r"\bh200\b", 67, 494.5, 989, 4800, 141, H200),
    GpuSpec("A100 80GB PCIe", r"\ba100\b.*pcie.*80\s?gb|\ba100\b.*80\s?gb.*pcie", 19.5, 156, 312, 1935, 80, A100),
    GpuSpec("A100 40GB PCIe", r"\ba100\b.*pcie", 19.5, 156, 312, 1555, 40, A100),
    GpuSpec("A100 80GB SXM", r"\ba100\b.*80\s?gb", 19.5, 156, 312, 2039, 80, A100),
    GpuSpec("A100 40GB SXM", r"\ba100\b", 19.5, 156, 312, 1555, 40, A100),
    GpuSpec("A10", r"\ba10\b", 31.2, 62.5, 125, 600, 24,
            "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a10/pdf/a10-datasheet.pdf"),
    GpuSpec("L40S", r"\bl40s\b", 91.6, 183, 362, 864, 48,
            "https://resources.nvidia.com/en-us-l40s/l40s-datasheet-28413"),
    GpuSpec("L4", r"\bl4\b", 30.3, 60, 121, 300, 24,
            "https://resources.nvidia.com/en-us-data-center-overview/l4-gpu-datasheet"),
    GpuSpec("T4", r"\bt4\b", 8.1, None, 65, 320, 16, T4, "fp16 tensor cores, no bf16"),
    GpuSpec("V100S PCIe", r"\bv100s\b", 16.4, None, 130, 1134, 32, V100, "fp16 tensor cores, no bf16"),
    GpuSpec("V100 PCIe", r"\bv100\b.*pcie", 14, None, 112, 900, 32, V100, "fp16 tensor cores, no bf16"),
    GpuSpec("V100 SXM2", r"\bv100\b", 15.7, None, 125, 900, 32, V100, "fp16 tensor cores, no bf16"),
    GpuSpec("P100 PCIe 12GB", r"\bp100\b.*pcie.*12\s?gb", 9.3, None, None, 549, 12, P100, "no tensor cores"),
    GpuSpec("P100 PCIe 16GB", r"\bp100\b.*pcie", 9.3, None, None, 732, 16, P100, "no tensor cores"),
    GpuSpec("P100 SXM2", r"\bp100\b", 10.6, None, None, 732, 16, P100_SXM, "no tensor cores"),
    GpuSpec("K80 (one of its two GPUs)", r"\bk80\b", 4.37, None, None, 240, 12, K80,
            "half of the board's 8.73 TFLOP/s boost and 480 GB/s; Kepler (sm_37) is not in current PyTorch builds"),
    GpuSpec("GeForce RTX 4090", r"\brtx 4090\b", 82.6, 82.6, 165.2, 1008, 24, ADA),
    GpuSpec("GeForce RTX 4080", r"\brtx 4080\b", 48.7, 48.7, 97.5, 716.8, 16, ADA),
    GpuSpec("GeForce RTX 4070 Ti", r"\brtx 4070 ti\b", 40.1, 40.1, 80.2, 504, 12, ADA,
            "the whitepaper's RTX 4080 12GB, launched as the 4070 Ti"),
    GpuSpec("GeForce RTX 3090 Ti", r"\brtx 3090 ti\b", 40, 40, 80, 1008, 24,
            "https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/rtx-3090-3090ti/"),
    GpuSpec("GeForce RTX 3090", r"\brtx 3090\b", 35.6, 35.6, 71, 936, 24, GA102),
    GpuSpec("GeForce RTX 3080 Ti", r"\brtx 3080 ti\b", 34.1, 34.1, 68.2, 912, 12,
            "https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/rtx-3080-3080ti/"),
    GpuSpec("GeForce RTX 3080", r"\brtx 3080\b", 29.8, 29.8, 59.5, 760, 10, GA102),
    GpuSpec("GeForce RTX 3070", r"\brtx 3070\b", 20.3, 20.3, 40.6, 448, 8, GA102),
]

_NOT_THE_DESKTOP_CARD = re.compile(r"laptop|mobile|max-q")


def lookup(device_name: str) -> GpuSpec | None:
    """The spec row for a CUDA device name ("NVIDIA H100 80GB HBM3", "Tesla T4"), None for a card not in the table
    (laptop parts are left out: the same name covers many power limits)."""
    name = " ".join(device_name.lower().replace("-", " ").split())
    if _NOT_THE_DESKTOP_CARD.search(name):
        return None
    for spec in SPECS:
        if re.search(spec.pattern, name):
            return spec
    return None
