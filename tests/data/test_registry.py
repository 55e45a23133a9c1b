from __future__ import annotations

from pathlib import Path

import pytest
import torch

from byol.data.cache import CachedImageDataset
from byol.data.folder import ImageFolderDataset
from byol.data.registry import default_cache_size, load_images
from tests.helpers import solid_image


def test_digits_by_name(tmp_path: Path) -> None:
    source = load_images("digits", "train", tmp_path)
    assert source.name == "digits" and source.num_images == 1347 and source.has_labels
    assert source.cache_bytes == 1347 * 3 * 32 * 32
    cache = source.cache()
    assert cache.images.shape == (1347, 3, 32, 32) and cache.images.dtype == torch.uint8
    assert source.cache() is cache  # memoised
    assert isinstance(source.dataset(), CachedImageDataset)
    small = load_images("digits", "test", tmp_path, cache_size=16, max_images=50).cache()
    assert small.images.shape == (50, 3, 16, 16)
    assert small.labels.bincount().tolist() == [5] * 10


def test_folder_with_split_subfolders(tmp_path: Path) -> None:
    solid_image(tmp_path / "data" / "train" / "cat" / "1.png", (1, 1, 1))
    solid_image(tmp_path / "data" / "train" / "dog" / "2.png", (2, 2, 2))
    solid_image(tmp_path / "data" / "test" / "cat" / "3.png", (3, 3, 3))
    train = load_images(
        str(tmp_path / "data"), "train", tmp_path / "c", image_size=32, progress=False
    )
    test = load_images(str(tmp_path / "data"), "test", tmp_path / "c", image_size=32)
    assert train.num_images == 2 and train.classes == ["cat", "dog"]
    assert test.num_images == 1 and test.classes == ["cat"]
    assert train.cache_size == default_cache_size(32) == 37
    assert train.cache().images.shape == (2, 3, 37, 37)
    dataset = train.dataset()
    assert isinstance(dataset, ImageFolderDataset) and len(dataset) == 2


def test_folder_without_split_subfolders_is_used_for_both(tmp_path: Path) -> None:
    solid_image(tmp_path / "a.png", (1, 1, 1))
    solid_image(tmp_path / "b.png", (2, 2, 2))
    for split in ("train", "test"):
        source = load_images(str(tmp_path), split, tmp_path / "c", cache_size=8, progress=False)
        assert source.num_images == 2 and not source.has_labels
    assert default_cache_size(224) == 256


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ("imagenet-nope", {}, "neither one of digits, cifar10"),
        ("digits", {"split": "val"}, "split='val'"),
        ("digits", {"cache_size": 0}, "cache_size=0"),
        ("digits", {"max_images": 0}, "max_images=0"),
    ],
)
def test_bad_requests(tmp_path: Path, source: str, kwargs: dict[str, object], message: str) -> None:
    split = kwargs.pop("split", "train")
    with pytest.raises(ValueError, match=message):
        load_images(source, split, tmp_path, **kwargs)  # type: ignore[arg-type]
