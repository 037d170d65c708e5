"""Estimated prices of compute, in US dollars per device-hour, for usage metering.

These are estimates, not bills: on-demand list prices of public cloud VMs, divided by the GPUs in the VM
(so a GPU's row includes its share of the VM's CPUs, memory and disk), as listed on the providers' public
price pages on the date given. Prices change; override any row with a YAML file mapping a device kind to
dollars per hour, at $DEEPSTATION_RATES or ~/.config/deepstation/rates.yaml:

    H100: 2.49        # what our cloud charges us
    cpu: 0.0          # our own workstation's CPUs are free
    "RTX 4090": 0.40  # a kind not in the table: matched against the GPU's name, case-insensitively
"""
from __future__ import annotations

import os
from pathlib import Path

RATES_ENV = "DEEPSTATION_RATES"
AS_OF = "2024"

# kind -> $/hour per device. A GPU's name (torch.cuda.get_device_name, e.g. "NVIDIA H100 80GB HBM3") takes
# the longest kind it contains. Sources: AWS EC2 On-Demand pricing, Linux, US East (N. Virginia),
# https://aws.amazon.com/ec2/pricing/on-demand/ (2024 list prices, before AWS's 2025 cuts to P4/P5 prices),
# and Azure's Linux virtual machines pricing page for the H200.
DEFAULT_RATES: dict[str, float] = {
    "H200": 10.60,   # Azure ND96isr H200 v5: $84.80/h for 8 x H200 (East US, pay as you go)
    "H100": 12.29,   # AWS p5.48xlarge: $98.32/h for 8 x H100 SXM 80GB
    "A100": 4.10,    # AWS p4d.24xlarge: $32.77/h for 8 x A100 40GB
    "A10G": 1.006,   # AWS g5.xlarge: $1.006/h for 1 x A10G
    "L4": 0.805,     # AWS g6.xlarge: $0.8048/h for 1 x L4
    "T4": 0.526,     # AWS g4dn.xlarge: $0.526/h for 1 x T4
    "V100": 3.06,    # AWS p3.2xlarge: $3.06/h for 1 x V100 16GB
    "K80": 0.90,     # AWS p2.xlarge: $0.90/h for 1 x K80 (a retired generation)
    "cpu": 0.0425,   # per CPU thread: AWS c6i.large, $0.085/h for 2 vCPUs (one physical core)
}


def rates_file() -> Path:
    return Path(os.environ.get(RATES_ENV) or Path.home() / ".config" / "deepstation" / "rates.yaml")


def rates() -> dict[str, float]:
    """The default table with the user's file, if any, laid over it."""
    table = dict(DEFAULT_RATES)
    path = rates_file()
    if path.is_file():
        import yaml

        from deepstation.errors import DeepstationError

        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise DeepstationError(f"{path}: not valid YAML ({err}); expected `device kind: dollars per hour` "
                                   f"lines, such as `H100: 2.49`") from err
        if not isinstance(loaded, dict):
            raise DeepstationError(f"{path}: expected a mapping of device kind to dollars per hour, such as "
                                   f"`H100: 2.49`; got {type(loaded).__name__}")
        for kind, value in loaded.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise DeepstationError(f"{path}: `{kind}: {value!r}`: expected a number of dollars per hour, 0 "
                                       f"or more")
            table[str(kind)] = float(value)
    return table


def rate_for(kind: str, table: dict | None = None) -> float | None:
    """$/hour for one device of this kind: an exact row, else the longest row the name contains; None if
    none matches (an unknown GPU: its cost is left out rather than guessed)."""
    table = rates() if table is None else table
    if kind in table:
        return table[kind]
    lowered = kind.lower()
    matches = [k for k in table if k.lower() != "cpu" and k.lower() in lowered]
    return table[max(matches, key=len)] if matches else None
