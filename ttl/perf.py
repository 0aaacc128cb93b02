"""Throughput arithmetic: peak FLOP/s of known accelerators and model-FLOPs utilisation."""

from __future__ import annotations

# Dense bf16 peak FLOP/s from the vendors' datasheets (no sparsity).
PEAK_BF16_FLOPS = {
    "H200": 989.4e12,
    "H100 PCIe": 756.0e12,
    "H100": 989.4e12,
    "A100": 312.0e12,
}


def peak_flops(device_name: str) -> float | None:
    """Peak bf16 FLOP/s of a device by (a substring of) its name, or None when unknown."""
    for key, value in PEAK_BF16_FLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


def mfu(tokens_per_second: float, flops_per_token: float, peak: float) -> float:
    """Model-FLOPs utilisation: achieved model FLOP/s over the device's peak."""
    return tokens_per_second * flops_per_token / peak
