import torch
from torch import nn

from byol.config import OptimConfig
from byol.optim import LARS, build_optimizer, parameter_groups


def test_one_lars_step_matches_hand_computation() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||w|| = 5
    w.grad = torch.tensor([1.0, 0.0])
    lr, wd, eta, momentum = 0.5, 0.1, 1e-3, 0.9
    opt = LARS([w], lr=lr, momentum=momentum, weight_decay=wd, eta=eta)
    opt.step()
    g = torch.tensor([1.0, 0.0]) + wd * torch.tensor([3.0, 4.0])  # [1.3, 0.4]
    trust = eta * 5.0 / g.norm()
    expected = torch.tensor([3.0, 4.0]) - lr * trust * g
    torch.testing.assert_close(w.detach(), expected)
    # Second step: momentum buffer carries the first update.
    w.grad = torch.tensor([0.0, 1.0])
    first_update = trust * g
    g2 = torch.tensor([0.0, 1.0]) + wd * expected
    trust2 = eta * expected.norm() / g2.norm()
    expected2 = expected - lr * (momentum * first_update + trust2 * g2)
    opt.step()
    torch.testing.assert_close(w.detach(), expected2)


def test_excluded_group_is_neither_decayed_nor_adapted() -> None:
    b = nn.Parameter(torch.tensor([3.0, 4.0]))
    b.grad = torch.tensor([1.0, 2.0])
    opt = LARS(
        [{"params": [b], "weight_decay": 0.0, "lars_adaptation": False}], lr=0.1, weight_decay=0.5
    )
    opt.step()
    torch.testing.assert_close(b.detach(), torch.tensor([3.0 - 0.1, 4.0 - 0.2]))


def test_parameter_groups_exclude_biases_and_norms() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Linear(8, 2))
    regular, excluded = parameter_groups(model, 1e-6)
    assert {id(p) for p in regular["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert len(excluded["params"]) == 6
    assert excluded["weight_decay"] == 0.0 and not excluded["lars_adaptation"]
    assert regular["weight_decay"] == 1e-6 and regular["lars_adaptation"]


def test_build_optimizer_scales_learning_rate_with_batch() -> None:
    model = nn.Linear(3, 3)
    opt = build_optimizer(model, OptimConfig(base_learning_rate=0.2, batch_size=512))
    assert isinstance(opt, LARS)
    assert opt.param_groups[0]["lr"] == 0.4
    for name in ("sgd", "adamw"):
        assert build_optimizer(model, OptimConfig(optimizer=name)) is not None  # type: ignore[arg-type]


def test_trust_clip_caps_adapted_rate_at_global_rate() -> None:
    # eta * ||w|| / ||g|| = 0.02 * 5 / 0.1 = 1.0 > lr = 0.5: clipped to a plain lr * g step.
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    w.grad = torch.tensor([0.1, 0.0])
    LARS([w], lr=0.5, momentum=0.0, eta=0.02, trust_clip=True).step()
    torch.testing.assert_close(w.detach(), torch.tensor([3.0 - 0.05, 4.0]))
    # Below the cap the update is r * g (solo-learn divides by lr, the step multiplies back).
    v = nn.Parameter(torch.tensor([3.0, 4.0]))
    v.grad = torch.tensor([10.0, 0.0])
    LARS([v], lr=0.5, momentum=0.0, eta=0.02, trust_clip=True).step()
    # r = 0.02 * 5 / 10 = 0.01 < lr: r / lr = 0.02, step = lr * 0.02 * g = 0.1.
    torch.testing.assert_close(v.detach(), torch.tensor([3.0 - 0.1, 4.0]))
