"""Folders of non-square images: training crops reach the edges, evaluation is the official
test transform (shorter side to round(S * 256 / 224), centre crop S) computed by torchvision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from byol.augment import BatchedTwoViews
from byol.config import AugmentConfig, Config, ViewConfig
from byol.data.registry import load_images
from byol.eval.splits import load_labelled_splits

EDGE = (255, 0, 255)  # magenta: the outer eighth on the left and the right


def edged_image(path: Path, width: int = 96, height: int = 40, seed: int = 0) -> Path:
    """Grey noise in the middle, magenta strips along the left and right edges."""
    rng = np.random.default_rng(seed)
    pixels = np.repeat(rng.integers(60, 190, (height, width, 1), dtype=np.uint8), 3, axis=2)
    strip = width // 8
    pixels[:, :strip] = EDGE
    pixels[:, -strip:] = EDGE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def magenta_fraction(images: torch.Tensor) -> float:
    """Fraction of pixels of uint8/float (N, 3, H, W) images close to magenta."""
    scaled = images.float() if images.dtype == torch.uint8 else images * 255
    target = torch.tensor(EDGE, dtype=torch.float32).view(1, 3, 1, 1)
    close = (scaled - target).abs().amax(dim=1) < 40
    return float(close.float().mean())


def crops_only(image_size: int) -> AugmentConfig:
    """Random resized crops and flips, no colour change, identity normalisation."""
    view = ViewConfig(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)
    return AugmentConfig(
        image_size=image_size, view1=view, view2=view, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
    )


def test_training_crops_see_the_edges_of_non_square_images(tmp_path: Path) -> None:
    for index in range(4):
        edged_image(tmp_path / "images" / f"{index}.png", seed=index)
    cache = load_images(
        str(tmp_path / "images"), "train", tmp_path / "cache", image_size=16, progress=False
    ).cache()
    assert cache.images.shape == (4, 3, 19, 19)
    # The centre square of a 96x40 image holds no magenta; the whole image does.
    assert magenta_fraction(cache.images[:, :, :, :2]) == 1.0
    assert magenta_fraction(cache.images[:, :, :, -2:]) == 1.0
    augment = BatchedTwoViews(crops_only(16))
    generator = torch.Generator().manual_seed(0)
    view_1, view_2 = augment(cache.images.repeat(16, 1, 1, 1), generator)
    views = torch.cat([view_1, view_2])
    seen = [magenta_fraction(view[None]) > 0 for view in views]
    assert 0.2 < sum(seen) / len(seen) < 1.0


def official_transform(path: Path, image_size: int) -> np.ndarray:
    """torchvision's own eval transform on the decoded file: (S, S, 3) uint8."""
    resize = transforms.Resize(
        round(image_size * 256 / 224), interpolation=transforms.InterpolationMode.BICUBIC
    )
    crop = transforms.CenterCrop(image_size)
    with Image.open(path) as image:
        return np.asarray(crop(resize(image.convert("RGB"))))


def test_evaluation_is_the_official_test_transform(tmp_path: Path) -> None:
    files = [
        edged_image(tmp_path / "data" / split / name / "x.png", width, height, seed)
        for seed, (split, name, width, height) in enumerate(
            [
                ("train", "a", 96, 40),
                ("train", "b", 30, 70),
                ("test", "a", 50, 51),
                ("test", "b", 41, 90),
            ]
        )
    ]
    config = Config()
    config.augment.image_size = 24
    config.data.cache_dir = str(tmp_path / "cache")
    config.data.num_workers = 1
    bank, queries = load_labelled_splits(config, str(tmp_path / "data"))
    assert bank.images.shape == (2, 3, 24, 24) and queries.images.shape == (2, 3, 24, 24)
    cached = [*bank.images, *queries.images]
    for row, file in zip(cached, files, strict=True):
        np.testing.assert_array_equal(row.permute(1, 2, 0).numpy(), official_transform(file, 24))
    # The training cache of the same folder is a separate file with the whole image.
    train = load_images(
        str(tmp_path / "data"), "train", config.data.cache_dir, image_size=24, progress=False
    ).cache()
    assert train.size == 28 and train.location != bank.location
