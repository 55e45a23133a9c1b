from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from byol.eval.monitors import CollapseDetector, effective_rank, projection_std


def _gaussian(batch: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


def test_std_of_isotropic_projections_is_one_over_sqrt_d() -> None:
    value = projection_std(_gaussian(1024, 64))
    assert value.shape == ()
    assert value.item() == pytest.approx(1 / math.sqrt(64), rel=0.03)


def test_std_of_collapsed_projections_is_zero() -> None:
    constant = torch.ones(64, 32) * 3.0
    # Rank one with positive scales: every row points the same way after normalisation.
    rank_one = torch.rand(64, 1) + 0.5
    rank_one = rank_one * _gaussian(1, 32)
    assert projection_std(constant).item() == pytest.approx(0.0, abs=1e-6)
    assert projection_std(rank_one).item() == pytest.approx(0.0, abs=1e-6)


def test_effective_rank_separates_collapsed_from_isotropic() -> None:
    batch, dim = 256, 32
    isotropic = effective_rank(_gaussian(batch, dim)).item()
    collapsed = effective_rank(torch.ones(batch, dim)).item()
    rank_one = effective_rank(torch.randn(batch, 1) @ _gaussian(1, dim, seed=1)).item()
    assert isotropic > 0.9 * min(batch, dim)
    assert collapsed == pytest.approx(1.0, abs=0.01)
    assert rank_one == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("rank", [1, 3, 10])
def test_effective_rank_of_equal_singular_values_is_the_rank(rank: int) -> None:
    u, _ = torch.linalg.qr(_gaussian(50, rank, seed=2))
    v, _ = torch.linalg.qr(_gaussian(20, rank, seed=3))
    z = 5.0 * u @ v.T
    assert effective_rank(z).item() == pytest.approx(rank, rel=1e-3)


def test_effective_rank_matches_the_rankme_formula() -> None:
    z = _gaussian(40, 12) * torch.linspace(0.1, 3.0, 12)
    sigma = np.linalg.svd(z.double().numpy(), compute_uv=False)
    p = sigma / sigma.sum() + 1e-7
    expected = float(np.exp(-(p * np.log(p)).sum()))
    assert effective_rank(z).item() == pytest.approx(expected, rel=1e-5)


def test_monitors_reject_single_rows() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        projection_std(torch.ones(1, 8))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        effective_rank(torch.ones(8))


def test_detector_fires_once_after_patience_collapsed_values() -> None:
    detector = CollapseDetector(dimension=256, threshold=0.1, patience=3)
    reports = [detector.update(step, 1e-4, effective_rank=1.0) for step in range(0, 50, 10)]
    assert [r.collapsed for r in reports] == [False, False, True, True, True]
    messages = [r.message for r in reports if r.message is not None]
    assert len(messages) == 1
    assert "collapse at step 20" in messages[0]
    assert "effective rank 1.00" in messages[0]
    assert detector.collapsed_at_step == 20


def test_detector_stays_quiet_on_healthy_values() -> None:
    detector = CollapseDetector(dimension=256)
    healthy = 1 / math.sqrt(256)
    for step in range(100):
        report = detector.update(step, healthy * (0.5 + 0.5 * math.sin(step)) + 0.02)
        assert not report.collapsed and report.message is None


def test_detector_resets_on_a_healthy_value_and_counts_nan() -> None:
    detector = CollapseDetector(dimension=64, patience=2)
    assert not detector.update(0, 0.0).collapsed
    assert not detector.update(1, 0.1).collapsed  # healthy: the count restarts
    assert not detector.update(2, float("nan")).collapsed
    assert detector.update(3, 0.0).collapsed


def test_detector_on_real_monitor_values() -> None:
    dim = 128
    detector = CollapseDetector(dimension=dim, patience=2)
    for step in range(3):
        assert not detector.update(
            step, projection_std(_gaussian(64, dim, seed=step)).item()
        ).collapsed
    for step in range(3, 5):
        report = detector.update(step, projection_std(torch.ones(64, dim)).item())
    assert report.collapsed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dimension": 0}, "dimension=0"),
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"patience": 0}, "patience=0"),
    ],
)
def test_detector_rejects_bad_settings(kwargs: dict, match: str) -> None:
    settings = {"dimension": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        CollapseDetector(**settings)
