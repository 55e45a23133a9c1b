"""Grayscale, 16-bit and transparent images (X-ray, microscopy) train and evaluate.

16- and 32-bit grey is scaled by the full 16-bit range, v -> round(v / 257) (values above
65535 clipped), and grey is replicated to three equal channels; transparency is composited
on white. These tests check that the caches, a short training run and ``byol eval knn`` see
exactly those pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byol.cli.main import main
from byol.data.registry import load_images
from byol.train.engine import train
from tests.helpers import tiny_train_config


def grey16(path: Path, values: np.ndarray) -> Path:
    """Write (H, W) uint16 ``values`` as a 16-bit greyscale PNG (PIL mode ``I;16``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    return path


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_mode_reaches_the_caches_as_documented(tmp_path: Path, split: str) -> None:
    root = tmp_path / "images"
    grey16(root / "a.png", np.full((12, 20), 257 * 200 + 100, np.uint16))
    Image.fromarray(np.full((12, 20), 70000, np.int32), mode="I").save(root / "b.tif")
    Image.fromarray(np.full((12, 20), 77, np.uint8)).save(root / "c.png")  # L
    la = np.zeros((12, 20, 2), np.uint8)
    la[..., 0], la[..., 1] = 0, 0  # black, fully transparent -> white
    Image.fromarray(la, mode="LA").save(root / "d.png")
    rgba = np.zeros((12, 20, 4), np.uint8)
    rgba[...] = (200, 10, 20, 255)
    Image.fromarray(rgba, mode="RGBA").save(root / "e.png")
    source = load_images(str(root), split, tmp_path / "cache", image_size=8, progress=False)
    cache = source.cache() if split == "train" else source.eval_cache()
    expected = [(200, 200, 200), (255, 255, 255), (77, 77, 77), (255, 255, 255), (200, 10, 20)]
    for row, colour in zip(cache.images, expected, strict=True):
        assert row.permute(1, 2, 0).reshape(-1, 3).unique(dim=0).tolist() == [list(colour)]


def xray_folder(root: Path, per_class: dict[str, int]) -> None:
    """Two classes of 16-bit images, a bright disc on the left or on the right half, with
    values spread over the whole 16-bit range."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:24, 0:32]
    for split, count in per_class.items():
        for label, centre in (("left", 9), ("right", 23)):
            for index in range(count):
                disc = (rows - 12) ** 2 + (columns - centre) ** 2 < 40
                values = rng.integers(2_000, 12_000, (24, 32)) + disc * 50_000
                grey16(root / split / label / f"{index}.png", np.clip(values, 0, 65535))


def test_sixteen_bit_images_train_and_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "xray"
    xray_folder(data, {"train": 16, "test": 6})
    sample = np.asarray(Image.open(data / "train" / "left" / "0.png")).astype(np.int64)
    cache = load_images(str(data), "test", tmp_path / "c", image_size=16, progress=False)
    # The whole-image training cache keeps the 16-bit range: the disc is near 255, the
    # background near 2000..12000 / 257 = 8..47.
    train_cache = load_images(str(data), "train", tmp_path / "c", image_size=16, progress=False)
    assert int(train_cache.cache().images.max()) >= 230 and sample.max() > 50_000
    assert int(cache.eval_cache().images.min()) <= 47

    config = tiny_train_config(tmp_path, source=str(data), max_images=None)
    config.optim.batch_size = 16
    config.train.epochs = 1
    result = train(config, progress=False)
    assert result.steps == 2
    code = main(
        ["eval", "knn", "--checkpoint", str(result.run_dir), "--data", str(data), "--k", "5"]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= record["top1"] <= 1.0 and record["data"] == str(data)
    # The raw-pixel baseline separates left from right discs: evaluation saw the discs.
    assert record["baselines"]["raw_pixels"]["top1"] == 1.0
