"""CPU runtime choices: bfloat16 where the processor does it natively, thread counts.

bfloat16 autocast halves the work of the convolutions on CPUs with AMX or AVX-512 BF16
(measured here: about 2-3x faster for DnCNN); elsewhere it is emulated and slower than
float32, so it is used only where the CPU flags say it is native.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_native() -> bool:
    """True where the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16)."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def resolve_precision(precision: str = "auto") -> str:
    """``"auto"`` → ``"bf16"`` where native, else ``"fp32"``; explicit values pass through."""
    if precision not in {"auto", "bf16", "fp32"}:
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "auto":
        override = os.environ.get("NOISEAD_PRECISION")
        if override in {"bf16", "fp32"}:
            return override
        return "bf16" if bf16_native() else "fp32"
    return precision


@contextlib.contextmanager
def autocast(precision: str) -> Iterator[None]:
    """bfloat16 autocast on the CPU for ``"bf16"``, nothing for ``"fp32"``."""
    if resolve_precision(precision) == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield
