"""Which numeric precision a run uses: one rule for training and for evaluation.

``auto`` picks bf16 autocast where the hardware computes in bf16 natively (CUDA GPUs that
support it, CPUs with AVX-512 BF16 or AMX), fp16 autocast on older CUDA GPUs, and float32
elsewhere, since emulated bf16 is slower than float32.
"""

from __future__ import annotations

from pathlib import Path

import torch

PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")


def resolve_precision(requested: str, device_type: str) -> str:
    """``requested`` (one of :data:`PRECISIONS`) for a device of type ``device_type``.

    Raises:
        ValueError: ``requested`` is not one of :data:`PRECISIONS`.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r} is not supported; use one of {PRECISIONS}")
    if requested != "auto":
        return requested
    if device_type == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device_type == "cpu" and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"


def training_device_type(accelerator: str) -> str:
    """The device type Fabric will train on for ``train.accelerator``."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "cuda"
    return "cpu" if accelerator in ("auto", "cpu", "gpu", "cuda") else accelerator


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (``avx512_bf16`` or ``amx_bf16`` in cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
