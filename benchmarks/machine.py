"""What a benchmark ran on: CPU model, vendor, threads, torch, and the product backend chosen."""

from __future__ import annotations

import platform

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (vendor added when the name hides it)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (s.strip() for s in line.split(":", 1))
                    fields.setdefault(key, value)
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    vendor = fields.get("vendor_id", "")
    flags = set(fields.get("flags", "").split())
    isa = ", ".join(x for x, f in (("AVX-512", "avx512f"), ("AMX", "amx_tile")) if f in flags)
    family = f" family {fields.get('cpu family')} model {fields.get('model')}" if "cpu family" in fields else ""
    return f"{name} ({vendor}{family}{', ' + isa if isa else ''})"


def describe(device: str = "cpu") -> str:
    from onlstm import gemm

    return (f"machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
            f"big products (onlstm.gemm) float32: {gemm.backend(torch.float32, device)}")
