"""Tiny image files for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def solid(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Path:
    """Write a single-colour RGB image (format from the extension); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def noise_jpeg(path: Path, side: int = 64, seed: int = 0) -> Path:
    """Write a random-noise RGB JPEG (large enough that truncating it breaks decoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 pixels of an RGB image."""
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.uint8)
