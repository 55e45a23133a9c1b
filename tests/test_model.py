import pytest
import torch
from torch import nn

from byol import BYOL
from byol.heads import MLPHead
from tests.helpers import tiny_byol


def test_structure_and_heads() -> None:
    model = tiny_byol()
    assert {n for n, _ in model.online.named_children()} == {"encoder", "projector", "predictor"}
    assert {n for n, _ in model.target.named_children()} == {"encoder", "projector"}
    head = MLPHead(64, 4096, 256)
    kinds = [type(m) for m in head]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]  # no BN on the output


def test_only_online_gets_gradients() -> None:
    model = tiny_byol()
    x1, x2 = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    model(x1, x2).loss.backward()
    assert all(p.grad is not None for p in model.online.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.target.parameters())


def test_update_target_is_exact_ema() -> None:
    model = tiny_byol()
    with torch.no_grad():
        for p in model.online.parameters():
            p.add_(torch.randn_like(p))
    target, online = model.online_target_pairs()
    old = [t.detach().clone() for t in target]
    tau = 0.99
    model.update_target(tau)
    for new, before, theta in zip(target, old, online, strict=True):
        torch.testing.assert_close(
            new, tau * before + (1 - tau) * theta, rtol=1e-6, atol=1e-7
        )  # 1 ulp: fused multiply-add


def test_each_view_gets_its_own_batchnorm_statistics() -> None:
    # A BatchNorm computed over the concatenated views would give different outputs.
    model = tiny_byol()
    x1, x2 = torch.randn(4, 3, 16, 16), 5 + torch.randn(4, 3, 16, 16)
    out = model(x1, x2)
    projection_1, _ = model.online(x1)
    torch.testing.assert_close(out.online_projection_1, projection_1)


def test_target_runs_in_train_mode_and_updates_its_own_statistics() -> None:
    model = tiny_byol()
    bn = model.target.encoder.bn1
    before = bn.running_mean.clone()
    model(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16))
    assert not torch.equal(bn.running_mean, before)


def test_custom_module_needs_declared_or_given_feature_dim() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="feature_dim"):
        BYOL(net)
    model = BYOL(
        net, feature_dim=8, projector_hidden_dim=16, projection_dim=4, predictor_hidden_dim=16
    )
    assert model.feature_dim == 8


def test_mismatched_views_rejected() -> None:
    with pytest.raises(ValueError, match="views"):
        tiny_byol()(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 8, 8))
