"""One BYOL optimisation step, independent of the engine that runs it.

Order per step k ([official] ``byol_experiment.py:260-300``): set the learning rate for k,
forward both views, backward, optimiser step, then move the target towards the updated
online weights with tau_k.

With ``skip_nonfinite``, a step whose loss or gradients are not finite (inf/NaN) is skipped
without a host synchronisation: the check is a device-side flag that masks the gradients to
zero (:func:`zero_nonfinite_gradients_`). The optimiser step then sees zero gradients, so the
weights move only by momentum and weight decay, and the target by the EMA: all finite.
BatchNorm running statistics of that step's forward pass are not undone; the engine checks
the whole state before every checkpoint.

Gradient accumulation (``accumulation_steps`` k > 1) splits the batch into k equal micro-batches
and backpropagates each with its loss divided by k, so the gradient is that of the mean loss
over the batch; one optimiser step and one EMA step follow. It equals the full batch only for
a network without BatchNorm: BatchNorm normalises each micro-batch with its own statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from byol.model import BYOL, BYOLOutput


def set_learning_rate(optimizer: Optimizer, learning_rate: float) -> None:
    """Write the scheduled learning rate into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


@dataclass(frozen=True)
class StepResult:
    """One step: the forward pass's output and, with ``skip_nonfinite``, whether the update was
    applied (a bool scalar on the device, never read back here; None without the check)."""

    output: BYOLOutput
    applied: Tensor | None = None


def zero_nonfinite_gradients_(
    optimizer: Optimizer, loss: Tensor, check_gradients: bool = True
) -> Tensor:
    """Zero every gradient of ``optimizer``'s parameters unless the step is finite.

    Finite: ``loss`` and, with ``check_gradients``, every gradient element are finite. Decided
    on the device with no host synchronisation: the gradients are gathered into one flat
    buffer, checked, masked and copied back (a few passes over the gradients, no per-parameter
    kernels). Returns the flag, a bool scalar on the loss's device.

    ``check_gradients=False`` suits fp16 loss scaling, whose scaler already skips steps with
    overflowing gradients and must see them to lower its scale.
    """
    gradients = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    finite = torch.isfinite(loss.detach())
    if not gradients:
        return finite
    # reshape, not view: channels_last gradients are flattened in logical (N, C, H, W) order.
    flat = torch.cat([gradient.reshape(-1) for gradient in gradients])
    if check_gradients:
        finite = finite & torch.isfinite(flat).all()
    flat.masked_fill_(~finite, 0.0)
    pieces = flat.split([gradient.numel() for gradient in gradients])
    torch._foreach_copy_(gradients, [p.view_as(g) for p, g in zip(pieces, gradients, strict=True)])
    return finite


def _no_context(_skip: bool) -> AbstractContextManager[Any]:
    return nullcontext()


@dataclass(frozen=True)
class StepHooks:
    """How an engine runs a step around the BYOL maths; the defaults run it plainly.

    ``forward``: what is called on the two views instead of the model itself, e.g. a DDP or
    Fabric wrapper of it (the target is always updated on the unwrapped model).
    ``backward``: how to backpropagate (an engine may scale or synchronise).
    ``no_backward_sync(True)``: a context in which forward and backward do not all-reduce
    gradients across processes (DDP's ``no_sync``); used for all but the last micro-batch, so
    gradients are reduced once per step.
    ``accumulation_steps``: k micro-batches per step (see the module docstring).
    ``skip_nonfinite``: zero the gradients of a step whose loss or gradients are not finite;
    ``check_gradients`` as in :func:`zero_nonfinite_gradients_`.
    """

    forward: Callable[[Tensor, Tensor], BYOLOutput] | None = None
    backward: Callable[[Tensor], None] = Tensor.backward
    no_backward_sync: Callable[[bool], AbstractContextManager[Any]] = _no_context
    accumulation_steps: int = 1
    skip_nonfinite: bool = False
    check_gradients: bool = True


def training_step(
    model: BYOL,
    optimizer: Optimizer,
    views: tuple[Tensor, Tensor],
    learning_rate: float,
    tau: float,
    hooks: StepHooks = StepHooks(),
) -> StepResult:
    """Run one step and return the forward pass's output (loss not read back to the host).

    Args:
        model: the (unwrapped) :class:`BYOL`; its target is updated with ``tau``.
        optimizer: over the online network's parameters.
        views: the two augmented views, each (B, 3, H, W), on the model's device.
        learning_rate, tau: this step's scheduled values (host floats: no device sync).
        hooks: how the engine runs the step (wrapper, backward, accumulation, non-finite
            skipping); with k micro-batches the returned output holds the mean loss and the
            concatenated projections and predictions.
    """
    view_1, view_2 = views
    accumulation_steps = hooks.accumulation_steps
    check_gradient_accumulation(accumulation_steps, view_1.shape[0])
    set_learning_rate(optimizer, learning_rate)
    forward = model if hooks.forward is None else hooks.forward
    outputs: list[BYOLOutput] = []
    for index, (micro_1, micro_2) in enumerate(
        zip(view_1.chunk(accumulation_steps), view_2.chunk(accumulation_steps), strict=True)
    ):
        with hooks.no_backward_sync(index < accumulation_steps - 1):
            micro_output: BYOLOutput = forward(micro_1, micro_2)
            loss = micro_output.loss
            hooks.backward(loss / accumulation_steps if accumulation_steps > 1 else loss)
        outputs.append(micro_output)
    output = outputs[0] if len(outputs) == 1 else _concatenate(outputs)
    applied = (
        zero_nonfinite_gradients_(optimizer, output.loss, hooks.check_gradients)
        if hooks.skip_nonfinite
        else None
    )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.update_target(tau)
    return StepResult(output, applied)


def check_gradient_accumulation(accumulation_steps: int, batch_size: int) -> None:
    """Raise ``ValueError`` unless ``batch_size`` (per process) splits into
    ``accumulation_steps`` equal micro-batches."""
    if isinstance(accumulation_steps, bool) or accumulation_steps < 1:
        raise ValueError(
            f"optim.gradient_accumulation_steps={accumulation_steps} must be at least 1"
        )
    if batch_size % accumulation_steps:
        raise ValueError(
            f"the batch of {batch_size} images per process does not split into "
            f"optim.gradient_accumulation_steps={accumulation_steps} equal micro-batches; "
            "choose a number of steps that divides optim.batch_size / processes"
        )


def _concatenate(outputs: list[BYOLOutput]) -> BYOLOutput:
    """One output for the micro-batches of a step: mean loss, concatenated (detached) tensors."""
    return BYOLOutput(
        loss=torch.stack([output.loss.detach() for output in outputs]).mean(),
        **{
            name: torch.cat([getattr(output, name).detach() for output in outputs])
            for name in (
                "online_representation_1",
                "online_projection_1",
                "online_projection_2",
                "online_prediction_1",
                "online_prediction_2",
                "target_projection_1",
                "target_projection_2",
            )
        },
    )
