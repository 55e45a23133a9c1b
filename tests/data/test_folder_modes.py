"""Every PIL mode and file format becomes 8-bit RGB with the right values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from byol.data.folder import ImageFolderDataset, open_rgb, to_rgb
from tests.helpers import rgb_array

WHITE = (255, 255, 255)


def saved(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_grey_l_png(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8))
    pixels = rgb_array(open_rgb(saved(image, tmp_path / "g.png")))
    assert pixels.tolist() == [[[0, 0, 0], [77, 77, 77], [255, 255, 255]]]


@pytest.mark.parametrize("extension", [".png", ".bmp", ".tiff", ".webp"])
def test_rgb_lossless_formats_keep_values(tmp_path: Path, extension: str) -> None:
    values = np.array([[[10, 200, 30], [255, 0, 128]], [[1, 2, 3], [90, 80, 70]]], np.uint8)
    path = tmp_path / f"c{extension}"
    kwargs: dict[str, Any] = {"lossless": True} if extension == ".webp" else {}
    Image.fromarray(values).save(path, **kwargs)
    np.testing.assert_array_equal(rgb_array(open_rgb(path)), values)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    values = np.array([[[200, 10, 20, 0], [200, 10, 20, 255], [0, 0, 0, 128]]], np.uint8)
    image = Image.frombytes("RGBA", (3, 1), values.tobytes())
    pixels = rgb_array(open_rgb(saved(image, tmp_path / "a.png"))).astype(int)
    assert pixels[0, 0].tolist() == list(WHITE)
    assert pixels[0, 1].tolist() == [200, 10, 20]
    # 128/255 black over white: 255 * (1 - 128/255) = 127.
    assert np.abs(pixels[0, 2] - 127).max() <= 1


def test_la_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.frombytes("LA", (2, 1), bytes([50, 255, 50, 0]))
    pixels = rgb_array(open_rgb(saved(image, tmp_path / "la.png")))
    assert pixels.tolist() == [[[50, 50, 50], [255, 255, 255]]]


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    plain = rgb_array(open_rgb(saved(image, tmp_path / "p.png")))
    assert plain.tolist() == [[[255, 0, 0], [0, 0, 255]]]
    image.info["transparency"] = 1
    image.save(tmp_path / "pt.png", transparency=1)
    transparent = rgb_array(open_rgb(tmp_path / "pt.png"))
    assert transparent.tolist() == [[[255, 0, 0], list(WHITE)]]


@pytest.mark.parametrize("extension", [".png", ".tiff"])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path: Path, extension: str) -> None:
    values = np.array([[0, 257 * 100, 257 * 200 + 100, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    with Image.open(saved(image, tmp_path / f"d{extension}")) as opened:
        assert opened.mode.startswith("I")
    pixels = rgb_array(open_rgb(tmp_path / f"d{extension}"))
    assert pixels[..., 0].tolist() == [[0, 100, 200, 255]]
    assert (pixels == pixels[..., :1]).all()


def test_32_bit_integer_grey_uses_16_bit_range() -> None:
    image = Image.fromarray(np.array([[-5, 0, 32896, 65535, 70000]], dtype=np.int32), "I")
    assert rgb_array(to_rgb(image))[..., 1].tolist() == [[0, 0, 128, 255, 255]]


def test_float_grey() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert rgb_array(to_rgb(unit))[..., 2].tolist() == [[0, 128, 255]]
    wide = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32), "F")
    assert rgb_array(to_rgb(wide))[..., 2].tolist() == [[0, 100, 255]]


def test_cmyk_tiff(tmp_path: Path) -> None:
    image = Image.new("CMYK", (3, 1))
    image.putpixel((0, 0), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 0))
    image.putpixel((2, 0), (0, 0, 0, 255))
    pixels = rgb_array(open_rgb(saved(image, tmp_path / "k.tiff")))
    assert pixels.tolist() == [[list(WHITE), [0, 255, 255], [0, 0, 0]]]


def test_one_bit_bmp(tmp_path: Path) -> None:
    image = Image.new("1", (2, 1))
    image.putpixel((1, 0), 1)
    pixels = rgb_array(open_rgb(saved(image, tmp_path / "b.bmp")))
    assert pixels.tolist() == [[[0, 0, 0], list(WHITE)]]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (250, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "o.jpg", exif=exif)
    assert open_rgb(tmp_path / "o.jpg").size == (20, 40)


def test_dataset_yields_rgb_for_every_mode(tmp_path: Path) -> None:
    Image.new("L", (5, 4), 9).save(tmp_path / "a.png")
    Image.new("RGBA", (5, 4), (1, 2, 3, 255)).save(tmp_path / "b.webp", lossless=True)
    Image.new("CMYK", (5, 4), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(tmp_path / "d.tif")
    Image.new("P", (5, 4), 3).save(tmp_path / "e.bmp")
    dataset = ImageFolderDataset(tmp_path)
    assert len(dataset) == 5
    expected_first = [[9, 9, 9], [1, 2, 3], [255, 255, 255], [255, 255, 255]]
    for index in range(5):
        image, label = dataset[index]
        assert label == -1
        assert image.mode == "RGB" and image.size == (5, 4)
        if index < 4:
            got = rgb_array(image)[0, 0].astype(int)
            # JPEG (CMYK) may be off by a little; the others are exact.
            assert np.abs(got - expected_first[index]).max() <= (2 if index == 2 else 0)
