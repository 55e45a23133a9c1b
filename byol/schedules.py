"""Schedules over optimiser steps: the target decay rate tau and the learning rate.

Both are pure functions of the optimiser step k, so gradient accumulation, resumption and
multi-process runs all see the same value ([official] ``utils/schedules.py``). Counting steps
of one epoch instead of the whole run was solo-learn issue #247.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def target_tau(step: int, total_steps: int, tau_base: float) -> float:
    """tau_k = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2.

    [paper] Section 3.2; [official] ``utils/schedules.py:20-24``. Starts at ``tau_base`` and
    rises to 1.0 at ``k = K``.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps={total_steps} must be positive")
    if not 0.0 <= tau_base <= 1.0:
        raise ValueError(f"tau_base={tau_base} must lie in [0, 1] (the paper uses 0.99-0.996)")
    progress = min(max(step, 0), total_steps) / total_steps
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def peak_learning_rate(base_learning_rate: float, batch_size: int) -> float:
    """The linear scaling rule: base_lr * batch_size / 256, with the global batch size.

    [paper] Appendix C ("learning rate of 0.2 x BatchSize / 256"); [official] ``configs/byol.py``.
    """
    return base_learning_rate * batch_size / 256.0


def learning_rate(
    step: int, total_steps: int, warmup_steps: int, base_learning_rate: float, batch_size: int
) -> float:
    """Linear warm-up from 0, then cosine decay to 0; peak = base_lr * batch_size / 256.

    [official] ``utils/schedules.py:27-43`` (warm-up 10 epochs: ``configs/byol.py:64``).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps={total_steps} must be positive")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps={warmup_steps} must be >= 0")
    peak = peak_learning_rate(base_learning_rate, batch_size)
    if step < warmup_steps:
        return peak * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(step - warmup_steps, decay_steps) / decay_steps
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class TrainingSchedule:
    """The learning rate and tau of every step of one run.

    ``total_steps`` K, ``warmup_steps``, ``base_learning_rate`` and the global ``batch_size``
    (all processes together: the one figure the linear scaling rule uses) fix both schedules.
    """

    total_steps: int
    warmup_steps: int
    base_learning_rate: float
    batch_size: int
    tau_base: float

    def learning_rate(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based)."""
        return learning_rate(
            step, self.total_steps, self.warmup_steps, self.base_learning_rate, self.batch_size
        )

    def tau(self, step: int) -> float:
        """tau of the target update after step ``step``."""
        return target_tau(step, self.total_steps, self.tau_base)
