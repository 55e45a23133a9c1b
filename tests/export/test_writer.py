from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from byol.export import ExportResult, export_encoder, export_onnx, sha256_of
from byol.small_resnet import SmallResNet
from tests.helpers import TrainedRun, one_step_checkpoint

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedRun, ExportResult]:
    """torchvision ResNet-18 with the CIFAR stem, exported with ONNX."""
    run = one_step_checkpoint(tmp_path_factory.mktemp("resnet18"), "resnet18", 32, cifar_stem=True)
    return run, export_encoder(run.checkpoint, run.checkpoint.parent / "export")


def features(module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module.eval()(images)


def test_torchvision_weights_load_into_plain_torchvision(
    resnet_run: tuple[TrainedRun, ExportResult],
) -> None:
    run, result = resnet_run
    model = torchvision.models.resnet18()
    model.fc = nn.Identity()
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    images = torch.randn(3, 3, 32, 32)
    untrained = features(model, images)
    state = torch.load(result.out_dir / "encoder_torchvision.pt", weights_only=True)
    model.load_state_dict(state, strict=True)
    expected = features(run.model.online.encoder, images)
    torch.testing.assert_close(features(model, images), expected)
    assert not torch.allclose(untrained, expected, atol=1e-3)  # the weights made the match
    assert result.source == "torchvision" and result.feature_dim == 512


def test_readme_torchvision_recipe_runs(
    resnet_run: tuple[TrainedRun, ExportResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, result = resnet_run
    readme = (result.out_dir / "README.md").read_text()
    recipe = re.search(r"## torchvision.*?```python\n(.*?)```", readme, re.S)
    assert recipe is not None
    monkeypatch.chdir(result.out_dir)
    namespace: dict[str, object] = {}
    exec(recipe.group(1), namespace)
    model = namespace["model"]
    assert isinstance(model, nn.Module)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(features(model, images), features(run.model.online.encoder, images))


def test_safetensors_round_trip(resnet_run: tuple[TrainedRun, ExportResult]) -> None:
    run, result = resnet_run
    expected = run.model.online.encoder.state_dict()
    loaded = load_file(result.out_dir / "encoder.safetensors")
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
        assert loaded[key].is_contiguous()
    with safe_open(result.out_dir / "encoder.safetensors", "pt") as handle:
        assert handle.metadata()["backbone"] == "resnet18"


def test_onnx_matches_the_encoder_for_any_batch_size(
    resnet_run: tuple[TrainedRun, ExportResult],
) -> None:
    run, result = resnet_run
    path = result.out_dir / "encoder.onnx"
    graph = onnx.load(str(path))
    assert max(opset.version for opset in graph.opset_import if opset.domain == "") >= 17
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["features"]
    for batch in (1, 5):
        images = torch.randn(batch, 3, 32, 32)
        (out,) = session.run(["features"], {"images": images.numpy()})
        assert out.shape == (batch, 512)
        np.testing.assert_allclose(
            out, features(run.model.online.encoder, images).numpy(), atol=1e-4, rtol=1e-4
        )


def test_manifest_lists_every_file_with_its_hash(
    resnet_run: tuple[TrainedRun, ExportResult],
) -> None:
    _, result = resnet_run
    manifest = json.loads(result.manifest.read_text())
    written = {file.name for file in result.files} - {"export.json"}
    assert (
        set(manifest["files"])
        == written
        == {p.name for p in result.out_dir.iterdir()} - {"export.json"}
    )
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(result.out_dir / name)
    assert manifest["backbone"] == "resnet18" and manifest["cifar_stem"] is True
    assert manifest["feature_dim"] == 512 and manifest["image_size"] == 32
    assert manifest["input"]["mean"] == [0.5, 0.4, 0.3]
    assert manifest["input"]["std"] == [0.2, 0.25, 0.3]
    assert manifest["onnx"]["input"] == "images" and manifest["onnx"]["opset"] >= 17
    assert manifest["checkpoint"]["step"] == 1


def test_timm_weights_load_into_timm_create_model(tmp_path: Path) -> None:
    name = "test_resnet" if "test_resnet" in timm.list_models("test_*") else "resnet10t"
    run = one_step_checkpoint(tmp_path, name, 32)
    result = export_encoder(run.checkpoint, tmp_path / "export", onnx=False)
    assert result.source == "timm"
    assert not (tmp_path / "export" / "encoder_torchvision.pt").exists()
    model = timm.create_model(name, num_classes=0)
    model.load_state_dict(load_file(tmp_path / "export" / "encoder_timm.safetensors"), strict=True)
    images = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(features(model, images), features(run.model.online.encoder, images))


def test_small_resnet_export_replaces_stale_files(small_run: TrainedRun, tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "encoder_torchvision.pt").write_bytes(b"from an earlier export")
    result = export_encoder(small_run.checkpoint, out, onnx=False)
    assert result.source == "byol" and result.onnx_exporter is None
    assert {p.name for p in out.iterdir()} == {"encoder.safetensors", "README.md", "export.json"}
    model = SmallResNet(8)
    model.load_state_dict(load_file(out / "encoder.safetensors"), strict=True)
    images = torch.randn(2, 3, 16, 16)
    expected = features(small_run.model.online.encoder, images)
    torch.testing.assert_close(features(model, images), expected)


def test_image_size_override_and_validation(small_run: TrainedRun, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size=0 must be a positive integer"):
        export_encoder(small_run.checkpoint, tmp_path / "a", image_size=0)
    result = export_encoder(small_run.checkpoint, tmp_path / "b", image_size=24)
    session = onnxruntime.InferenceSession(
        str(tmp_path / "b" / "encoder.onnx"), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[0].shape[1:] == [3, 24, 24]
    assert json.loads(result.manifest.read_text())["image_size"] == 24


def test_torchscript_exporter_gives_the_same_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = SmallResNet(8).eval()
    written = export_onnx(encoder, tmp_path / "encoder.onnx", 16, exporter="torchscript")
    assert written.exporter == "torchscript" and written.opset == 17
    session = onnxruntime.InferenceSession(
        str(written.files[0]), providers=["CPUExecutionProvider"]
    )
    images = torch.randn(3, 3, 16, 16)
    (out,) = session.run(["features"], {"images": images.numpy()})
    np.testing.assert_allclose(out, features(encoder, images).numpy(), atol=1e-4, rtol=1e-4)


def test_unknown_exporter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exporter='jit' is not one of"):
        export_onnx(SmallResNet(8), tmp_path / "x.onnx", 16, exporter="jit")  # type: ignore[arg-type]
