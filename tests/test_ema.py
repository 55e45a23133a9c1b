"""The EMA step of the target: xi <- tau * xi + (1 - tau) * theta ([paper] Eq. 1)."""

import pytest
import torch

from byol.ema import ema_update_


def _tensors(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in ((3, 4), (5,), (2, 2, 2))]


@pytest.mark.parametrize("tau", [0.0, 0.5, 0.99, 1.0])
def test_every_tensor_moves_by_the_papers_formula(tau: float) -> None:
    target, online = _tensors(0), _tensors(1)
    expected = [tau * xi + (1 - tau) * theta for xi, theta in zip(target, online, strict=True)]
    ema_update_(target, online, tau)
    for new, want in zip(target, expected, strict=True):
        torch.testing.assert_close(new, want, rtol=1e-6, atol=1e-7)


def test_tau_one_keeps_the_target_and_tau_zero_copies_the_online_weights() -> None:
    target, online = _tensors(0), _tensors(1)
    before = [t.clone() for t in target]
    ema_update_(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(target, before, strict=True))
    ema_update_(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(target, online, strict=True))


def test_the_online_weights_are_not_touched() -> None:
    target, online = _tensors(0), _tensors(1)
    before = [t.clone() for t in online]
    ema_update_(target, online, 0.9)
    assert all(torch.equal(a, b) for a, b in zip(online, before, strict=True))


def test_repeated_updates_converge_geometrically() -> None:
    # After n steps towards a fixed theta the gap shrinks by tau**n.
    target, online = [torch.zeros(4)], [torch.ones(4)]
    for _ in range(10):
        ema_update_(target, online, 0.9)
    torch.testing.assert_close(target[0], torch.full((4,), 1 - 0.9**10))


@pytest.mark.parametrize("tau", [-0.1, 1.5])
def test_tau_outside_the_unit_interval_is_refused(tau: float) -> None:
    with pytest.raises(ValueError, match=f"tau={tau}"):
        ema_update_(_tensors(0), _tensors(1), tau)


def test_mismatched_parameter_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="3 target tensors but 2 online"):
        ema_update_(_tensors(0), _tensors(1)[:2], 0.9)
