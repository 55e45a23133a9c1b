"""One BYOL optimisation step, independent of the engine that runs it.

Order per step k ([official] ``byol_experiment.py:260-300``): set the learning rate for k,
forward both views, backward, optimiser step, then move the target towards the updated
online weights with tau_k.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from byol.model import BYOL, BYOLOutput


def set_learning_rate(optimizer: Optimizer, learning_rate: float) -> None:
    """Write the scheduled learning rate into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def training_step(
    model: nn.Module,
    byol: BYOL,
    optimizer: Optimizer,
    view_1: Tensor,
    view_2: Tensor,
    learning_rate: float,
    tau: float,
    backward: Callable[[Tensor], None] = Tensor.backward,
    autocast_dtype: torch.dtype | None = None,
) -> BYOLOutput:
    """Run one step and return the forward pass's output (loss not read back to the host).

    Args:
        model: what is called forward: ``byol`` itself or an engine's wrapper of it (DDP).
        byol: the unwrapped :class:`BYOL`, whose target is updated.
        optimizer: over the online network's parameters.
        view_1, view_2: augmented views, (B, 3, H, W), on the model's device.
        learning_rate, tau: this step's scheduled values (host floats: no device sync).
        backward: how to backpropagate (an engine may scale or synchronise).
        autocast_dtype: run the forward under autocast in this dtype (e.g. bfloat16), or None
            when the engine already handles precision.
    """
    set_learning_rate(optimizer, learning_rate)
    if autocast_dtype is not None:
        with torch.autocast(view_1.device.type, dtype=autocast_dtype):
            output: BYOLOutput = model(view_1, view_2)
    else:
        output = model(view_1, view_2)
    backward(output.loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    byol.update_target(tau)
    return output
