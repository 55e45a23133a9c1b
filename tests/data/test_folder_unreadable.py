"""Unreadable files are skipped, counted and listed; never silently dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from byol.data.cache import build_folder_cache
from byol.data.folder import (
    ImageFolderDataset,
    SkippedImagesWarning,
    open_rgb,
    scan_folder,
)
from byol.data.resize import whole_image_square
from tests.helpers import noise_jpeg, solid_image


def make_mixed_folder(root: Path) -> tuple[list[Path], dict[str, Path]]:
    """Three good images and four bad ones, in class folders."""
    good = [
        solid_image(root / "a" / "good0.png", (10, 20, 30)),
        noise_jpeg(root / "a" / "good1.jpg", seed=1),
        solid_image(root / "b" / "good2.bmp", (200, 100, 0)),
    ]
    full = noise_jpeg(root / "tmp.jpg", seed=2).read_bytes()
    (root / "tmp.jpg").unlink()
    bad = {
        "truncated": root / "a" / "truncated.jpg",
        "empty": root / "b" / "empty.jpg",
        "text": root / "b" / "text.jpg",
        "garbage": root / "b" / "garbage.png",
    }
    bad["truncated"].write_bytes(full[: len(full) // 2])
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("this is not a JPEG\n")
    bad["garbage"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return good, bad


def test_header_check_skips_empty_and_non_images(tmp_path: Path) -> None:
    _, bad = make_mixed_folder(tmp_path)
    with pytest.warns(SkippedImagesWarning, match="skipped 3 of 7"):
        dataset = ImageFolderDataset(tmp_path, validate="header")
    skipped = dict(dataset.skipped)
    assert set(skipped) == {str(bad[k].resolve()) for k in ("empty", "text", "garbage")}
    assert "0 bytes" in skipped[str(bad["empty"].resolve())]
    # The header of the truncated JPEG is intact: only decoding finds it.
    assert len(dataset) == dataset.found - len(dataset.skipped) == 4


def test_full_check_skips_truncated_files_too(tmp_path: Path) -> None:
    good, bad = make_mixed_folder(tmp_path)
    with pytest.warns(SkippedImagesWarning, match="skipped 4 of 7"):
        dataset = ImageFolderDataset(tmp_path, validate="full")
    assert {p for p, _ in dataset.skipped} == {str(p.resolve()) for p in bad.values()}
    assert dataset.paths == [str(p.resolve()) for p in good]
    assert dataset.labels == [0, 0, 1]
    assert all(reason for _, reason in dataset.skipped)


def test_late_failure_is_substituted_and_recorded(tmp_path: Path) -> None:
    _, bad = make_mixed_folder(tmp_path)
    with pytest.warns(SkippedImagesWarning):
        dataset = ImageFolderDataset(tmp_path, validate="header")
    index = dataset.paths.index(str(bad["truncated"].resolve()))
    before = len(dataset.skipped)
    with pytest.warns(SkippedImagesWarning, match=r"truncated\.jpg cannot be decoded"):
        image, label = dataset[index]
    assert image.mode == "RGB"
    # Substituted by the next file in order, with that file's label.
    assert label == dataset.labels[index + 1]
    assert len(dataset) == 4
    assert dataset.skipped[before][0] == str(bad["truncated"].resolve())


def test_late_failure_can_raise(tmp_path: Path) -> None:
    _, bad = make_mixed_folder(tmp_path)
    with pytest.warns(SkippedImagesWarning):
        dataset = ImageFolderDataset(tmp_path, on_error="raise")
    index = dataset.paths.index(str(bad["truncated"].resolve()))
    with pytest.raises(ValueError, match=r"truncated\.jpg cannot be decoded"):
        dataset[index]


def test_cache_skips_every_bad_file_and_keeps_order(tmp_path: Path) -> None:
    good, bad = make_mixed_folder(tmp_path / "images")
    scan = scan_folder(tmp_path / "images")
    with pytest.warns(SkippedImagesWarning, match="skipped 4 of 7"):
        cache = build_folder_cache(scan, tmp_path / "cache", 8, progress=False, num_workers=2)
    assert {p for p, _ in cache.skipped} == {str(p.resolve()) for p in bad.values()}
    assert cache.paths == [str(p.resolve()) for p in good]
    assert cache.labels.tolist() == [0, 0, 1]
    assert cache.images.shape == (3, 3, 8, 8)
    # Rows were compacted over the gaps left by bad files.
    for row, path in zip(cache.images, good, strict=True):
        expected = np.asarray(whole_image_square(open_rgb(path, draft_size=8), 8)).transpose(
            2, 0, 1
        )
        np.testing.assert_array_equal(row.numpy(), expected)
    # A reused cache reports the same skipped files.
    with pytest.warns(SkippedImagesWarning):
        again = build_folder_cache(scan, tmp_path / "cache", 8, progress=False)
    assert again.reused and again.skipped == cache.skipped


def test_folder_of_only_bad_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"")
    (tmp_path / "y.png").write_text("nope")
    with pytest.raises(ValueError, match="none of the 2 image files"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ValueError, match="none of the 2 image files"):
        build_folder_cache(scan_folder(tmp_path), tmp_path / "cache", 4, progress=False)


def test_bad_options_are_errors(tmp_path: Path) -> None:
    solid_image(tmp_path / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match="validate='fast'"):
        ImageFolderDataset(tmp_path, validate="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error='skip'"):
        ImageFolderDataset(tmp_path, on_error="skip")  # type: ignore[arg-type]
