import itertools
import math

import pytest

from byol.schedules import learning_rate, target_tau


def test_tau_endpoints_and_monotone() -> None:
    total = 1000
    taus = [target_tau(k, total, 0.996) for k in range(total + 1)]
    assert taus[0] == pytest.approx(0.996)
    assert taus[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in itertools.pairwise(taus))
    # Midpoint of the cosine: 1 - (1 - tau_base) / 2.
    assert taus[500] == pytest.approx(1 - 0.004 / 2)


def test_learning_rate_warmup_then_cosine() -> None:
    total, warmup = 100, 10
    peak = 0.2 * 4096 / 256
    assert learning_rate(0, total, warmup, 0.2, 4096) == 0.0
    assert learning_rate(5, total, warmup, 0.2, 4096) == pytest.approx(peak / 2)
    assert learning_rate(10, total, warmup, 0.2, 4096) == pytest.approx(peak)
    assert learning_rate(55, total, warmup, 0.2, 4096) == pytest.approx(
        peak * 0.5 * (1 + math.cos(math.pi * 0.5))
    )
    assert learning_rate(100, total, warmup, 0.2, 4096) == pytest.approx(0.0, abs=1e-12)


def test_schedules_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="total_steps"):
        target_tau(0, 0, 0.99)
    with pytest.raises(ValueError, match="tau_base"):
        target_tau(0, 10, 1.5)
