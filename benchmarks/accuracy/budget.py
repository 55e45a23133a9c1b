"""Sizing a training schedule to a wall-clock budget, for both sides of the CPU benchmark.

A budgeted run measures its throughput on its first steps and fixes its schedule (warm-up,
cosine learning rate, tau) to the number of steps that fit; the schedule must end on time for
the figure to mean anything. The first steps are slower (workers starting, caches filling) and
the other side of a side-by-side run starts at the same moment, so the rate is taken from the
steady windows after the first, and the budget is counted in steps, not rounded down to whole
epochs (at 5-6 epochs, rounding down left a fifth of a 30-minute budget unused).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def steady_images_per_second(window_rates: Sequence[float]) -> float:
    """The throughput of equal-length step windows, the first (start-up) one dropped.

    The windows hold the same number of steps, so the rate over all of them is the harmonic
    mean of their rates, not the arithmetic one.
    """
    if len(window_rates) < 2:
        raise ValueError(
            f"need at least 2 throughput windows to drop the first, got {len(window_rates)}; "
            "probe for more steps"
        )
    return statistics.harmonic_mean(window_rates[1:])


def steps_for_budget(seconds: float, images_per_second: float, batch_size: int) -> int:
    """Training steps of ``batch_size`` images that fit ``seconds`` at ``images_per_second``."""
    if seconds <= 0 or images_per_second <= 0 or batch_size <= 0:
        raise ValueError(
            f"seconds={seconds}, images_per_second={images_per_second} and "
            f"batch_size={batch_size} must all be positive"
        )
    return max(1, int(seconds * images_per_second / batch_size))


def epochs_covering(steps: int, steps_per_epoch: int) -> int:
    """The run length in whole epochs that holds ``steps``: the recipe is chosen by it and
    ``train.max_steps`` ends the schedules at ``steps``."""
    return max(1, math.ceil(steps / steps_per_epoch))
