"""``byol downstream``: the written detector and segmenter load where their users build them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from byol.cli.main import main
from byol.downstream.dense_export import build_dense_model
from byol.downstream.dense_spec import DenseModelSpec
from tests.helpers import Resnet18Run, one_error_line


def test_detector_file_loads_into_torchvisions_own_builder(
    resnet18_run: Resnet18Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fasterrcnn.safetensors"
    arguments = ["downstream", "fasterrcnn", "--checkpoint", str(resnet18_run.export_dir)]
    assert main([*arguments, "--num-classes", "3", "--out", str(out)]) == 0
    assert "boxes (" in capsys.readouterr().out
    # Built by torchvision alone, as a training script without byol would.
    backbone = resnet_fpn_backbone(
        backbone_name="resnet18", weights=None, trainable_layers=3, norm_layer=FrozenBatchNorm2d
    )
    detector = FasterRCNN(backbone, num_classes=3)
    detector.load_state_dict(load_file(out), strict=True)
    encoder = resnet18_run.model.online.encoder.state_dict()
    for name, value in detector.backbone.body.state_dict().items():
        assert torch.equal(value, encoder[name]), name
    description = json.loads(out.with_suffix(".json").read_text())
    assert description["architecture"] == "fasterrcnn" and description["num_classes"] == 3
    assert description["backbone"] == "resnet18" and description["weights"] == out.name
    assert len(description["image_mean"]) == 3 and len(description["image_std"]) == 3


def test_segmenter_file_rebuilds_the_same_model(resnet18_run: Resnet18Run, tmp_path: Path) -> None:
    out = tmp_path / "deeplab.safetensors"
    arguments = ["downstream", "deeplabv3", "--checkpoint", str(resnet18_run.run_dir), "--aux"]
    assert main([*arguments, "--num-classes", "4", "--out", str(out)]) == 0
    spec = DenseModelSpec("deeplabv3", 4, aux=True)
    torch.manual_seed(123)  # other head weights than the written ones, until the file is loaded
    model = build_dense_model(resnet18_run.export_dir, spec).eval()
    images = torch.rand(2, 3, 64, 64)
    before = model(images)["out"]
    model.load_state_dict(load_file(out), strict=True)
    after = model(images)
    assert after["out"].shape == (2, 4, 64, 64) and after["aux"].shape == (2, 4, 64, 64)
    assert not torch.allclose(before, after["out"])  # the file's head, not a fresh one
    encoder = resnet18_run.model.online.encoder.state_dict()
    assert torch.equal(
        model.backbone.state_dict()["layer4.1.conv2.weight"], encoder["layer4.1.conv2.weight"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["fasterrcnn", "--num-classes", "1", "--out", "m.safetensors"], "num_classes=1"),
        (["fcn", "--num-classes", "2", "--out", "m.pt"], "must end in .safetensors"),
    ],
)
def test_bad_requests_name_the_fix(
    resnet18_run: Resnet18Run,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    arguments = ["downstream", extra[0], "--checkpoint", str(resnet18_run.export_dir), *extra[1:]]
    assert main(arguments) == 2
    assert message in one_error_line(capsys)


def test_small_resnets_are_refused_with_the_reason(
    untrained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    arguments = ["downstream", "retinanet", "--checkpoint", str(untrained_run)]
    assert main([*arguments, "--num-classes", "3", "--out", str(out)]) == 2
    assert "torchvision ResNets" in one_error_line(capsys)
    assert not out.exists()
