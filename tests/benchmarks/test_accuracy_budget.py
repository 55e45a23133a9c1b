"""The wall-clock budget planner of the CPU accuracy benchmark (benchmarks/accuracy/budget.py)."""

from __future__ import annotations

import pytest

from benchmarks.accuracy.budget import epochs_covering, steady_images_per_second, steps_for_budget


def test_steady_rate_drops_the_start_up_window_and_weights_windows_by_time() -> None:
    # Windows of equal steps at 100 and 300 images/s take 3:1 of the time: 150 images/s in all.
    assert steady_images_per_second([20.0, 100.0, 300.0]) == pytest.approx(150.0)


def test_steady_rate_needs_a_window_after_the_first() -> None:
    with pytest.raises(ValueError, match="at least 2 throughput windows"):
        steady_images_per_second([175.0])


def test_budget_is_counted_in_steps_not_whole_epochs() -> None:
    # 30 minutes at 175 images/s, batch 256: 1,230 steps, 6.3 epochs of 195 steps.
    steps = steps_for_budget(30 * 60, 175.0, 256)
    assert steps == 1230
    assert epochs_covering(steps, 195) == 7
    assert epochs_covering(195, 195) == 1


@pytest.mark.parametrize("seconds, rate, batch", [(0, 100.0, 256), (60, -1.0, 256), (60, 1.0, 0)])
def test_budget_rejects_non_positive_inputs(seconds: float, rate: float, batch: int) -> None:
    with pytest.raises(ValueError, match="must all be positive"):
        steps_for_budget(seconds, rate, batch)
