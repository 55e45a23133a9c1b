import torch

from byol.loss import byol_loss, regression_loss


def paper_formula(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # ||p/||p|| - z/||z|| ||^2 written out from [paper] Eq. 2.
    pn = p / p.norm(dim=1, keepdim=True)
    zn = z / z.norm(dim=1, keepdim=True)
    return ((pn - zn) ** 2).sum(dim=1)


def test_regression_loss_equals_paper_formula() -> None:
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(32, 17, generator=g), torch.randn(32, 17, generator=g)
    torch.testing.assert_close(regression_loss(p, z), paper_formula(p, z))


def test_byol_loss_sums_directions_and_averages_batch() -> None:
    g = torch.Generator().manual_seed(1)
    p1, p2, z1, z2 = (torch.randn(16, 8, generator=g) for _ in range(4))
    expected = (paper_formula(p1, z2) + paper_formula(p2, z1)).mean()
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), expected)
    # Averaging the two directions would give half of this: pin the sum.
    assert byol_loss(p1, p2, z1, z2) > 0.5 * expected + 1e-3


def test_byol_loss_symmetric_bounded_and_zero_for_identical() -> None:
    g = torch.Generator().manual_seed(2)
    p1, p2, z1, z2 = (torch.randn(64, 8, generator=g) for _ in range(4))
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), byol_loss(p2, p1, z2, z1))
    assert 0.0 <= byol_loss(p1, p2, z1, z2).item() <= 8.0
    # Bounds reached: identical directions give 0, opposite directions give 8.
    assert byol_loss(p1, p2, 3 * p2, 0.5 * p1).abs().item() < 1e-5
    torch.testing.assert_close(byol_loss(p1, p2, -p2, -p1), torch.tensor(8.0))


def test_loss_stops_gradient_through_target() -> None:
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    regression_loss(p, z).sum().backward()
    assert p.grad is not None and z.grad is None
