from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from byol.data.cache import (
    CachedImageDataset,
    ImageCache,
    build_folder_cache,
    cache_from_arrays,
    resize_uint8_batch,
)
from byol.data.folder import scan_folder
from tests.helpers import solid_image


def three_stripes(path: Path, width: int, height: int) -> Path:
    """Red | green | blue vertical stripes; the centre square of a wide image is green."""
    pixels = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    pixels[:, :third] = (255, 0, 0)
    pixels[:, third : 2 * third] = (0, 255, 0)
    pixels[:, 2 * third :] = (0, 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


class Counter:
    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> None:
        self.builds += 1


def build(root: Path, cache_dir: Path, counter: Counter, size: int = 6) -> ImageCache:
    return build_folder_cache(
        scan_folder(root), cache_dir, size, progress=False, num_workers=2, on_build=counter
    )


def test_non_square_images_are_resized_whole(tmp_path: Path) -> None:
    three_stripes(tmp_path / "img" / "wide.png", 90, 30)
    solid_image(tmp_path / "img" / "tall.png", (7, 8, 9), size=(10, 40))
    cache = build(tmp_path / "img", tmp_path / "cache", Counter())
    assert cache.images.shape == (2, 3, 6, 6) and cache.images.dtype == torch.uint8
    assert cache.labels.tolist() == [-1, -1]
    assert cache.images[0].permute(1, 2, 0).reshape(-1, 3).unique(dim=0).tolist() == [[7, 8, 9]]
    # The whole 90x30 image is kept: red, green and blue thirds, two columns each (the
    # bicubic kernel blends neighbouring stripes a little, so compare the dominant channel).
    dominant = cache.images[1].argmax(dim=0)  # (6, 6) channel index
    assert dominant.unique(dim=0).tolist() == [[0, 0, 1, 1, 2, 2]]


def test_second_call_reuses_the_file_and_a_change_rebuilds(tmp_path: Path) -> None:
    solid_image(tmp_path / "img" / "a" / "1.png", (10, 10, 10))
    solid_image(tmp_path / "img" / "b" / "2.png", (20, 20, 20))
    counter = Counter()
    first = build(tmp_path / "img", tmp_path / "cache", counter)
    assert counter.builds == 1 and not first.reused
    assert first.labels.tolist() == [0, 1] and first.classes == ["a", "b"]
    assert first.location is not None
    data_file = Path(first.location) / "images.u8"
    stamp = data_file.stat().st_mtime_ns

    second = build(tmp_path / "img", tmp_path / "cache", counter)
    assert counter.builds == 1 and second.reused
    assert data_file.stat().st_mtime_ns == stamp
    assert second.paths == first.paths
    assert torch.equal(second.images, first.images)

    # Same size and a later mtime, new content: the fingerprint changes.
    changed = solid_image(tmp_path / "img" / "b" / "2.png", (99, 99, 99))
    os.utime(changed, ns=(stamp + 10**9, stamp + 10**9))
    third = build(tmp_path / "img", tmp_path / "cache", counter)
    assert counter.builds == 2 and not third.reused
    assert third.images[1, :, 0, 0].tolist() == [99, 99, 99]
    assert third.location == first.location
    assert len(list((tmp_path / "cache" / "uint8").iterdir())) == 1  # no leftovers

    # A new file also rebuilds; a different size gets its own cache.
    solid_image(tmp_path / "img" / "b" / "3.png", (30, 30, 30))
    assert len(build(tmp_path / "img", tmp_path / "cache", counter)) == 3
    assert counter.builds == 3
    assert build(tmp_path / "img", tmp_path / "cache", counter, size=4).size == 4
    assert counter.builds == 4
    assert len(list((tmp_path / "cache" / "uint8").iterdir())) == 2


def test_mapped_cache_is_writable_without_touching_the_file(tmp_path: Path) -> None:
    solid_image(tmp_path / "img" / "x.png", (1, 2, 3))
    cache = build(tmp_path / "img", tmp_path / "cache", Counter())
    cache.images[0].zero_()
    again = build(tmp_path / "img", tmp_path / "cache", Counter())
    assert again.images[0, :, 0, 0].tolist() == [1, 2, 3]


def test_arrays_cache_and_resize() -> None:
    images = np.zeros((4, 8, 8, 3), np.uint8)
    images[:, :, :, 0] = np.arange(4)[:, None, None] * 60
    cache = cache_from_arrays(
        images, np.arange(4), 8, classes=["a", "b", "c", "d"], description="t", name="toy"
    )
    assert cache.images.shape == (4, 3, 8, 8)
    assert cache.images[3, 0].unique().tolist() == [180]
    assert cache.paths[2] == "toy[2]" and cache.labels.dtype == torch.int64
    smaller = resize_uint8_batch(cache.images, 4)
    assert smaller.shape == (4, 3, 4, 4)
    assert smaller[2, 0].unique().tolist() == [120]


def test_cached_dataset_serves_pil_images(tmp_path: Path) -> None:
    solid_image(tmp_path / "img" / "k" / "x.png", (5, 6, 7), size=(6, 6))
    cache = build(tmp_path / "img", tmp_path / "cache", Counter())
    image, label = CachedImageDataset(cache)[0]
    assert image.mode == "RGB" and image.size == (6, 6) and label == 0
    assert np.asarray(image)[0, 0].tolist() == [5, 6, 7]
    sized, _ = CachedImageDataset(cache, transform=lambda im: im.size)[0]
    assert sized == (6, 6)


def test_unwritable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    solid_image(tmp_path / "img" / "x.png", (1, 2, 3))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="is not writable"):
        build(tmp_path / "img", blocker, Counter())
