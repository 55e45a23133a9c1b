from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byol.data.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_TAR_ENV,
    find_cifar10_tar,
    load_cifar10_torchvision,
    unpack_cifar10_jpg,
)
from byol.data.registry import load_images


def fake_archive(tmp_path: Path, classes: tuple[str, ...] = CIFAR10_CLASSES) -> Path:
    """A small archive with the real layout: one image per class and split."""
    source = tmp_path / "fake-src"
    for split in ("train", "test"):
        for index, name in enumerate(classes):
            folder = source / split / name
            folder.mkdir(parents=True)
            Image.new("RGB", (32, 32), (index * 20, 0, 0)).save(folder / "0000.png")
    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(source / split, arcname=split)
    return archive


def test_real_archive_unpacks_into_an_image_folder(cifar10_jpg_root: Path) -> None:
    assert (cifar10_jpg_root / ".complete").is_file()
    for split, count in (("train", 5000), ("test", 1000)):
        assert sorted(p.name for p in (cifar10_jpg_root / split).iterdir()) == sorted(
            CIFAR10_CLASSES
        )
        assert len(list((cifar10_jpg_root / split / "ship").iterdir())) == count
    # A second call returns the existing copy without unpacking again.
    stamp = (cifar10_jpg_root / ".complete").stat().st_mtime_ns
    assert unpack_cifar10_jpg(cifar10_jpg_root.parent) == cifar10_jpg_root
    assert (cifar10_jpg_root / ".complete").stat().st_mtime_ns == stamp


def test_stratified_subset_of_the_real_test_split(
    cifar10_jpg_root: Path, shared_cache_dir: Path
) -> None:
    source = load_images("cifar10-jpg", "test", shared_cache_dir, max_images=30, progress=False)
    assert source.name == "cifar10-jpg" and "JPEG" in source.description
    assert source.classes == sorted(CIFAR10_CLASSES) and source.cache_size == 32
    cache = source.cache()
    assert cache.images.shape == (30, 3, 32, 32)
    assert cache.labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert [Path(p).name for p in cache.paths[:3]] == ["0000.jpg", "0001.jpg", "0002.jpg"]
    # 32x32 files are stored as decoded, without resampling.
    with Image.open(cache.paths[4]) as image_file:
        decoded = np.asarray(image_file.convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(cache.images[4].numpy(), decoded)
    image, label = source.dataset()[4]
    assert label == 1 and np.array_equal(np.asarray(image).transpose(2, 0, 1), decoded)


def test_unpack_is_checked_and_atomic(tmp_path: Path) -> None:
    archive = fake_archive(tmp_path)
    cache_dir = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"has sha256 .* expected a323cea4"):
        unpack_cifar10_jpg(cache_dir, archive)
    assert not (cache_dir / "cifar10-jpg").exists()
    root = unpack_cifar10_jpg(cache_dir, archive, verify_sha256=False)
    assert root == cache_dir / "cifar10-jpg"
    assert (root / "test" / "truck" / "0000.png").is_file()
    assert [p.name for p in cache_dir.iterdir()] == ["cifar10-jpg"]  # no temp folders left


def test_archive_with_wrong_layout_leaves_nothing_behind(tmp_path: Path) -> None:
    archive = fake_archive(tmp_path, classes=("cat", "dog"))
    with pytest.raises(ValueError, match="lacks train/airplane/"):
        unpack_cifar10_jpg(tmp_path / "cache", archive, verify_sha256=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_environment_variable_locates_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CIFAR10_TAR_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(ValueError, match=r"BYOL_CIFAR10_TAR=.*missing\.tar\.gz' is not a file"):
        find_cifar10_tar()
    archive = fake_archive(tmp_path)
    monkeypatch.setenv(CIFAR10_TAR_ENV, str(archive))
    assert find_cifar10_tar() == archive
    # With the archive found, "cifar10" resolves to the JPEG copy without downloading.
    unpack_cifar10_jpg(tmp_path / "cache", verify_sha256=False)
    source = load_images("cifar10", "train", tmp_path / "cache", download=False, progress=False)
    assert source.name == "cifar10-jpg" and source.num_images == 10
    assert source.cache().labels.tolist() == list(range(10))


def test_torchvision_copy_absent_without_download_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="could not be downloaded"):
        load_cifar10_torchvision("train", tmp_path, download=False)
