"""byol.load_encoder: the same frozen encoder from a run folder, a checkpoint or an export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

import byol
from byol.downstream import LoadedEncoder, load_encoder
from byol.export import export_encoder
from tests.helpers import EXPORT_MEAN, EXPORT_STD, Resnet18Run, one_step_run_folder


def test_run_folder_checkpoint_and_export_give_the_same_encoder(resnet18_run: Resnet18Run) -> None:
    images = torch.rand(2, 3, 64, 64)
    expected = resnet18_run.model.online.encoder.eval()(
        (images - torch.tensor(EXPORT_MEAN).view(1, 3, 1, 1))
        / torch.tensor(EXPORT_STD).view(1, 3, 1, 1)
    )
    sources = [
        resnet18_run.run_dir,
        resnet18_run.run_dir / "checkpoints" / "last.pt",
        resnet18_run.export_dir,
        resnet18_run.export_dir / "encoder.safetensors",
    ]
    for source in sources:
        loaded = byol.load_encoder(source)
        assert isinstance(loaded, LoadedEncoder)
        assert (loaded.backbone, loaded.source, loaded.feature_dim) == (
            "resnet18",
            "torchvision",
            512,
        )
        assert (loaded.image_size, loaded.mean, loaded.std) == (64, EXPORT_MEAN, EXPORT_STD)
        assert not loaded.encoder.training
        torch.testing.assert_close(loaded.features(images), expected.detach())


def test_run_folder_with_only_final_checkpoint(tmp_path: Path) -> None:
    model = one_step_run_folder(tmp_path / "run", "small_resnet18_w8", 16, name="final.pt")
    loaded = load_encoder(tmp_path / "run")
    assert loaded.origin.name == "final.pt" and loaded.source == "byol"
    for key, value in model.online.encoder.state_dict().items():
        assert torch.equal(loaded.encoder.state_dict()[key], value)


def test_transform_is_the_official_test_transform(resnet18_run: Resnet18Run) -> None:
    loaded = load_encoder(resnet18_run.export_dir)
    pixels = np.random.default_rng(0).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    bicubic = transforms.InterpolationMode.BICUBIC
    official = transforms.Compose(
        [
            transforms.Resize(round(64 * 256 / 224), interpolation=bicubic),
            transforms.CenterCrop(64),
            transforms.ToTensor(),
            transforms.Normalize(EXPORT_MEAN, EXPORT_STD),
        ]
    )
    torch.testing.assert_close(loaded.transform()(image), official(image))


def test_not_an_encoder_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_encoder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"neither export\.json .* nor checkpoints"):
        load_encoder(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not a BYOL checkpoint"):
        load_encoder(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match=r"images must be \(B, 3, H, W\)"):
        load_encoder(_small_export(tmp_path)).normalize(torch.rand(3, 8, 8))


def test_a_changed_export_is_refused(tmp_path: Path) -> None:
    export = _small_export(tmp_path)
    weights = export / "encoder.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_encoder(export)


def _small_export(tmp_path: Path) -> Path:
    one_step_run_folder(tmp_path / "small", "small_resnet18_w8", 16)
    export_encoder(tmp_path / "small", tmp_path / "small-export", onnx=False)
    return tmp_path / "small-export"
