import pytest
import torch
from torch import nn

from byol import BYOL, build_backbone


def test_torchvision_cifar_variant() -> None:
    backbone = build_backbone("resnet18", cifar_stem=True)
    assert backbone.feature_dim == 512 and backbone.source == "torchvision"
    assert backbone.module.conv1.kernel_size == (3, 3)
    assert isinstance(backbone.module.maxpool, nn.Identity)
    assert build_backbone("resnet50").feature_dim == 2048
    assert build_backbone("wide_resnet50_2").feature_dim == 2048


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError, match="resnet50"):
        build_backbone("resnet05")


class TinyNet(nn.Module):
    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _loss_falls(backbone: nn.Module | object) -> None:
    torch.manual_seed(0)
    model = BYOL(backbone, projector_hidden_dim=32, projection_dim=16, predictor_hidden_dim=32)  # type: ignore[arg-type]
    optimizer = torch.optim.SGD(model.online.parameters(), lr=0.05, momentum=0.9)
    x1, x2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    losses = []
    for _ in range(8):
        out = model(x1, x2)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        model.update_target(0.99)
        losses.append(out.loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["resnet18", "timm"])
def test_library_backbones_train(name: str) -> None:
    if name == "timm":
        pytest.importorskip("timm")
        _loss_falls(build_backbone("timm/resnet10t"))
    else:
        _loss_falls(build_backbone(name, cifar_stem=True))


def test_custom_module_trains() -> None:
    _loss_falls(TinyNet())
