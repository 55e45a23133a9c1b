"""Hostile or odd files in an image folder: names that are not UTF-8, FIFOs named like images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from byol.data.folder import SkippedImagesWarning, scan_folder
from tests.helpers import noise_images, noise_png_bytes, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_file_name_that_is_not_utf8_trains_on_the_cached_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 12)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # Latin-1 bytes, not UTF-8
    with open(odd, "wb") as handle:
        handle.write(noise_png_bytes())
    with open(os.path.join(os.fsencode(folder), b"bad-\xff.png"), "wb") as handle:
        handle.write(b"not an image")  # listed in skipped_images.txt under its own bytes
    assert run_train(tmp_path, str(folder)) == 0
    out = capsys.readouterr().out
    assert "on 13 images" in out
    listing = (tmp_path / "runs" / "run" / "skipped_images.txt").read_bytes()
    assert b"bad-\xff.png\t" in listing


def test_a_fifo_named_like_an_image_is_skipped_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 12)
    os.mkfifo(folder / "pipe.png")  # opening it for reading would block forever
    with pytest.warns(SkippedImagesWarning, match="special files"):
        scan = scan_folder(folder)
    assert len(scan) == 12 and not any(p.endswith("pipe.png") for p in scan.paths)
    started = time.monotonic()
    assert run_train(tmp_path, str(folder)) == 0
    assert time.monotonic() - started < 60
    assert "on 12 images" in capsys.readouterr().out
