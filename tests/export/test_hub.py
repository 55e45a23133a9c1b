"""The hf/ folder of an export: timm loads it offline with the exported weights, and its model
card carries the run's configuration and figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from byol.export import export_encoder
from tests.helpers import EXPORT_MEAN, EXPORT_STD, Resnet18Run, one_step_run_folder

timm = pytest.importorskip("timm")


def assert_same_weights(model: torch.nn.Module, exported: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert set(state) == set(exported)
    for key, value in exported.items():
        assert torch.equal(state[key], value), key


def test_timm_loads_a_torchvision_resnet_export(resnet18_run: Resnet18Run) -> None:
    hub = resnet18_run.export_dir / "hf"
    config = json.loads((hub / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_features"] == 512
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 64, 64] and cfg["crop_pct"] == 0.875
    assert (tuple(cfg["mean"]), tuple(cfg["std"])) == (EXPORT_MEAN, EXPORT_STD)
    exported = load_file(hub / "model.safetensors")
    encoder = resnet18_run.model.online.encoder
    for key, value in encoder.state_dict().items():
        assert torch.equal(exported[key], value), key

    overlay = timm.create_model(
        "resnet18",
        pretrained=True,
        num_classes=0,
        pretrained_cfg_overlay={"file": str(hub / "model.safetensors")},
    )
    assert_same_weights(overlay, exported)
    local = timm.create_model(f"local-dir:{hub}", pretrained=True)
    assert_same_weights(local, exported)
    assert tuple(local.pretrained_cfg["mean"]) == EXPORT_MEAN and local.num_classes == 0
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(local.eval()(images), encoder.eval()(images))
    data = timm.data.resolve_data_config({}, model=local)
    assert tuple(data["input_size"]) == (3, 64, 64) and data["crop_pct"] == 0.875
    assert data["interpolation"] == "bicubic" and tuple(data["std"]) == EXPORT_STD
    # The manifest lists the hf/ files with their checksums.
    manifest = json.loads((resnet18_run.export_dir / "export.json").read_text())
    assert {"hf/config.json", "hf/model.safetensors", "hf/README.md"} <= set(manifest["files"])


def test_model_card_has_configuration_data_and_figures(resnet18_run: Resnet18Run) -> None:
    card = (resnet18_run.export_dir / "hf" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: timm\n")
    assert "| backbone | resnet18 |" in card and "| batch size | 4 |" in card
    assert "`my-images`, 1234 training images" in card and "5 epochs (50 steps)" in card
    assert "| k-NN top-1 (BYOL encoder) | 43.21% |" in card
    assert "| linear top-1 (online classifier on frozen features) | 54.32% |" in card
    assert "| k-NN on raw pixels top-1 | 18.75% |" in card
    assert "random encoder (same architecture) top-1 | 12.50% |" in card


def test_timm_backbone_export_loads_in_timm(tmp_path: Path) -> None:
    model = one_step_run_folder(tmp_path / "run", "test_resnet", 32)
    export_encoder(tmp_path / "run", tmp_path / "export", onnx=False)
    hub = tmp_path / "export" / "hf"
    card = (hub / "README.md").read_text()
    assert "## Results" not in card  # the run folder holds no figures
    local = timm.create_model(f"local-dir:{hub}", pretrained=True)
    assert_same_weights(local, model.online.encoder.state_dict())


@pytest.mark.parametrize(
    ("backbone", "cifar_stem"), [("small_resnet18_w8", False), ("resnet18", True)]
)
def test_no_hub_folder_without_a_timm_architecture(
    tmp_path: Path, backbone: str, cifar_stem: bool
) -> None:
    one_step_run_folder(tmp_path / "run", backbone, 16, cifar_stem=cifar_stem)
    result = export_encoder(tmp_path / "run", tmp_path / "export", onnx=False)
    assert not (tmp_path / "export" / "hf").exists()
    assert all("hf/" not in str(path) for path in result.files)
