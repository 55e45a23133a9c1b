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


def test_unknown_name_suggests_each_model_once() -> None:
    pytest.importorskip("timm")  # timm also has a resnet18
    with pytest.raises(ValueError) as raised:
        build_backbone("resnet1")
    suggestions = str(raised.value).split("did you mean ")[1].split("?")[0].split(", ")
    assert "resnet18" in suggestions
    assert len(suggestions) == len(set(suggestions)), suggestions


def test_cifar_stem_effect_per_backbone_kind() -> None:
    from byol.backbone_names import cifar_stem_effect

    assert cifar_stem_effect("resnet50") == "replaces"
    assert cifar_stem_effect("small_resnet18_w8") == "built_in"
    assert cifar_stem_effect("timm/vit_tiny_patch16_224") == "refused"
    # The small ResNets have the CIFAR stem either way.
    with_flag = build_backbone("small_resnet18_w8", cifar_stem=True).module
    without = build_backbone("small_resnet18_w8", cifar_stem=False).module
    assert with_flag.conv1.kernel_size == without.conv1.kernel_size == (3, 3)
