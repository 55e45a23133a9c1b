"""Detection and segmentation models on the trained ResNet: same weights, and they learn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops.misc import FrozenBatchNorm2d

from byol.downstream import detection_backbone, load_encoder, segmentation_model
from tests.helpers import Resnet18Run, one_step_run_folder


def assert_holds_encoder_weights(body: nn.Module, encoder: nn.Module) -> None:
    """Every tensor of ``body`` equals the encoder's tensor of the same name."""
    reference = encoder.state_dict()
    state = body.state_dict()
    assert len(state) > 50
    for key, value in state.items():
        assert torch.equal(value, reference[key]), key


def test_detection_backbone_holds_the_encoder_and_freezes_the_stem(
    resnet18_run: Resnet18Run,
) -> None:
    backbone = detection_backbone(resnet18_run.export_dir, trainable_layers=2)
    encoder = resnet18_run.model.online.encoder
    assert_holds_encoder_weights(backbone.body, encoder)
    assert backbone.out_channels == 256
    assert isinstance(backbone.body.bn1, FrozenBatchNorm2d)
    trainable = {
        name.split(".")[0] for name, p in backbone.body.named_parameters() if p.requires_grad
    }
    assert trainable == {"layer3", "layer4"}
    features = backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape) for f in features.values()] == [
        (1, 256, 16, 16),
        (1, 256, 8, 8),
        (1, 256, 4, 4),
        (1, 256, 2, 2),
        (1, 256, 1, 1),
    ]
    # The loaded encoder itself is left as it was.
    assert all(p.requires_grad for p in load_encoder(resnet18_run.run_dir).encoder.parameters())


def synthetic_boxes(count: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Bright squares on dark noise, one box per image, label 1."""
    generator = torch.Generator().manual_seed(0)
    images, targets = [], []
    for _ in range(count):
        image = 0.2 * torch.rand(3, 64, 64, generator=generator)
        x, y = (int(v) for v in torch.randint(4, 36, (2,), generator=generator))
        image[:, y : y + 24, x : x + 24] = 0.9
        images.append(image)
        boxes = torch.tensor([[x, y, x + 24, y + 24]], dtype=torch.float32)
        targets.append({"boxes": boxes, "labels": torch.tensor([1])})
    return images, targets


def falling(losses: list[float]) -> bool:
    return losses[-1] < losses[0]


def test_faster_rcnn_trains_on_the_backbone(resnet18_run: Resnet18Run) -> None:
    torch.manual_seed(0)
    loaded = load_encoder(resnet18_run.run_dir)
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,)), aspect_ratios=((1.0,),) * 3)
    model = FasterRCNN(
        detection_backbone(loaded, returned_layers=[3, 4]),
        num_classes=2,
        min_size=64,
        max_size=64,
        image_mean=list(loaded.mean),
        image_std=list(loaded.std),
        rpn_anchor_generator=anchors,
    )
    images, targets = synthetic_boxes(2)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.001, momentum=0.9)
    model.train()
    losses = []
    for _ in range(5):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert falling(losses), losses
    model.eval()
    with torch.no_grad():
        assert set(model(images[:1])[0]) == {"boxes", "labels", "scores"}


@pytest.mark.parametrize("kind", ["deeplabv3", "fcn"])
def test_segmentation_model_holds_the_encoder_and_trains(
    resnet18_run: Resnet18Run, kind: str
) -> None:
    torch.manual_seed(0)
    model = segmentation_model(resnet18_run.export_dir, num_classes=3, kind=kind, aux=True)  # type: ignore[arg-type]
    assert_holds_encoder_weights(model.backbone, resnet18_run.model.online.encoder)
    images = 0.2 * torch.rand(4, 3, 64, 64)
    masks = torch.zeros(4, 64, 64, dtype=torch.int64)
    images[:, :, 8:40, 8:40] = 0.9
    masks[:, 8:40, 8:40] = 1
    images[:, :, 44:60, 30:60] = 0.5
    masks[:, 44:60, 30:60] = 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    losses = []
    for _ in range(4):
        out = model(images)
        assert out["out"].shape == (4, 3, 64, 64) and out["aux"].shape == (4, 3, 64, 64)
        loss = nn.functional.cross_entropy(out["out"], masks)
        loss = loss + 0.5 * nn.functional.cross_entropy(out["aux"], masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert falling(losses), losses


def test_output_stride_comes_from_dilation(resnet18_run: Resnet18Run) -> None:
    loaded = load_encoder(resnet18_run.run_dir)
    for stride, side in ((8, 8), (16, 4), (32, 2)):
        model = segmentation_model(loaded, num_classes=2, output_stride=stride)
        assert model.backbone(torch.rand(1, 3, 64, 64))["out"].shape[-1] == side


def test_other_backbones_are_refused_naming_the_supported_ones(tmp_path: Path) -> None:
    one_step_run_folder(tmp_path / "run", "small_resnet18_w8", 16)
    with pytest.raises(ValueError, match=r"torchvision ResNets \(resnet18, resnet34"):
        detection_backbone(tmp_path / "run")
    with pytest.raises(ValueError, match="small_resnet18_w8"):
        segmentation_model(tmp_path / "run", num_classes=2)


def test_bad_arguments_are_refused(resnet18_run: Resnet18Run) -> None:
    loaded = load_encoder(resnet18_run.run_dir)
    with pytest.raises(ValueError, match="trainable_layers=6"):
        detection_backbone(loaded, trainable_layers=6)
    with pytest.raises(ValueError, match="returned_layers"):
        detection_backbone(loaded, returned_layers=[0, 5])
    with pytest.raises(ValueError, match="kind='unet'"):
        segmentation_model(loaded, 2, kind="unet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes=0"):
        segmentation_model(loaded, 0)
    with pytest.raises(ValueError, match="output_stride=4"):
        segmentation_model(loaded, 2, output_stride=4)


def test_dilation_matches_torchvision_replace_stride_with_dilation() -> None:
    from torchvision.models import resnet50

    from byol.backbones import torchvision_resnet
    from byol.downstream.resnet_parts import dilate_

    ours = dilate_(torchvision_resnet("resnet50"), output_stride=8)
    reference = resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    convs = {n: m for n, m in reference.named_modules() if isinstance(m, nn.Conv2d)}
    for name, conv in ours.named_modules():
        if isinstance(conv, nn.Conv2d):
            expected = convs[name]
            assert (conv.stride, conv.dilation, conv.padding) == (
                expected.stride,
                expected.dilation,
                expected.padding,
            ), name
