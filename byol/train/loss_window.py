"""Losses between two log steps, kept on the device, and the finiteness checks of a run.

Reading a loss back to the host each step would make the host wait for the device every step.
The engine instead adds each step's loss to a device tensor and reads the window once per log
step (:meth:`LossWindow.read`); the first step with a non-finite loss and the steps skipped by
``train.nonfinite=skip`` are tracked on the device too, so the run can name them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.optim import Optimizer


@dataclass(frozen=True)
class WindowStats:
    """One logging window, read back to the host.

    ``loss``: mean loss over the window's applied steps, averaged over processes (NaN when the
    window holds a non-finite loss, or only skipped steps). ``steps``: steps in the window.
    ``skipped``: steps skipped in the whole run so far. ``first_nonfinite``: the first step
    of the window whose loss was not finite on this process, or None. ``seconds``: wall time.
    """

    loss: float
    steps: int
    skipped: int
    first_nonfinite: int | None
    seconds: float


class LossWindow:
    """Device-side sums of the steps since the last log step (no host sync in :meth:`add`)."""

    def __init__(self, device: torch.device, skipped: int = 0) -> None:
        """``skipped``: steps the run skipped before (a resumed run's count)."""
        self._loss_sum = torch.zeros((), device=device)
        self._applied = torch.zeros((), device=device)
        self._skipped = torch.full((), skipped, dtype=torch.int64, device=device)
        self._first_nonfinite = torch.full((), -1, dtype=torch.int64, device=device)
        self.steps = 0
        self._started = time.perf_counter()

    def add(self, step: int, loss: Tensor, applied: Tensor | None = None) -> None:
        """Record ``step``'s loss (a device scalar); ``applied=False`` marks a skipped step."""
        loss = loss.detach().float()
        unseen = (self._first_nonfinite < 0) & ~torch.isfinite(loss)
        self._first_nonfinite.masked_fill_(unseen, step)
        if applied is None:
            self._loss_sum += loss
            self._applied += 1
        else:
            self._loss_sum += torch.where(applied, loss, torch.zeros_like(loss))
            self._applied += applied
            self._skipped += ~applied
        self.steps += 1

    def read(self, all_reduce: Callable[[Tensor], Tensor] | None = None) -> WindowStats:
        """The window so far: one host synchronisation (and one all-reduce of two numbers)."""
        totals = torch.stack([self._loss_sum, self._applied])
        if all_reduce is not None:
            totals = all_reduce(totals)
        loss_sum, applied = totals.tolist()
        skipped, first = torch.stack([self._skipped, self._first_nonfinite]).tolist()
        return WindowStats(
            loss=loss_sum / applied if applied > 0 else math.nan,
            steps=self.steps,
            skipped=skipped,
            first_nonfinite=first if first >= 0 else None,
            seconds=time.perf_counter() - self._started,
        )

    def skipped(self) -> int:
        """Steps skipped in the whole run so far (one host sync)."""
        return int(self._skipped)

    def first_nonfinite(self) -> int | None:
        """The first step since the last log step whose loss was not finite (one host sync)."""
        first = int(self._first_nonfinite)
        return first if first >= 0 else None

    def reset(self) -> None:
        """Start the next window (the count of skipped steps runs on)."""
        self._loss_sum.zero_()
        self._applied.zero_()
        self._first_nonfinite.fill_(-1)
        self.steps = 0
        self._started = time.perf_counter()


def state_is_finite(model: nn.Module, optimizer: Optimizer) -> bool:
    """Whether every floating-point weight, buffer and optimiser state tensor is finite.

    One multi-tensor norm over all of them and one host synchronisation: a NaN or inf anywhere
    makes its tensor's norm non-finite (so would a norm overflowing float32, which only weights
    far beyond any trained network's reach produce).
    """
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    tensors += [
        value
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, Tensor) and value.is_floating_point() and value.dim() > 0
    ]
    if not tensors:
        return True
    norms = torch.stack(torch._foreach_norm([t.detach() for t in tensors]))
    return bool(torch.isfinite(norms).all())
