"""Exponential moving average of the online weights into the target weights.

xi <- tau * xi + (1 - tau) * theta ([paper] Eq. 1; [official] ``byol_experiment.py:342-350``).
Only parameters are averaged; BatchNorm running statistics of the target come from the
target's own forward passes, as in the official code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


@torch.no_grad()
def ema_update_(
    target_parameters: Sequence[Tensor], online_parameters: Sequence[Tensor], tau: float
) -> None:
    """In place: ``target = tau * target + (1 - tau) * online`` over all tensors at once.

    Two multi-tensor (foreach) kernels cover every parameter instead of one launch per tensor,
    and evaluate the paper's formula as written (up to one rounding of a fused multiply-add).

    Args:
        target_parameters: the target tensors xi, updated in place.
        online_parameters: the online tensors theta, same shapes and order.
        tau: decay rate in [0, 1], a Python float (the schedule is computed on the host, so no
            device synchronisation is needed).
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau={tau} must lie in [0, 1]")
    if len(target_parameters) != len(online_parameters):
        raise ValueError(
            f"{len(target_parameters)} target tensors but {len(online_parameters)} online tensors;"
            " the target must be a copy of the online encoder and projector"
        )
    if not target_parameters:
        return
    targets = list(target_parameters)
    torch._foreach_mul_(targets, tau)
    torch._foreach_add_(targets, list(online_parameters), alpha=1.0 - tau)
