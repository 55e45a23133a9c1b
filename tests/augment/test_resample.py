"""The batched crop + resize equals torchvision's antialiased bicubic resized_crop."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from byol.augment.resample import resampling_matrix, resized_crop

pytestmark = pytest.mark.usefixtures("one_thread")

BICUBIC = TF.InterpolationMode.BICUBIC


def _torchvision(
    images: torch.Tensor, boxes: list[tuple[int, int, int, int]], size: int
) -> torch.Tensor:
    return torch.stack(
        [
            TF.resized_crop(
                img, top, left, h, w, [size, size], interpolation=BICUBIC, antialias=True
            )
            for img, (top, left, h, w) in zip(images, boxes, strict=True)
        ]
    )


@pytest.mark.parametrize("width", [50, 40], ids=["wide", "square"])
@pytest.mark.parametrize("size", [8, 32, 61])
def test_resized_crop_matches_torchvision(size: int, width: int) -> None:
    images = torch.rand(5, 3, 40, width, generator=torch.Generator().manual_seed(0))
    # Whole image, downscale, strong upscale, a 1-pixel crop, a box touching the far corner.
    boxes = [(0, 0, 40, width), (5, 7, 20, 30), (10, 2, 3, 4), (17, 33, 1, 1), (3, 10, 37, 30)]
    top, left, height, width = (torch.tensor(v) for v in zip(*boxes, strict=True))
    actual = resized_crop(images, top, left, height, width, size)
    torch.testing.assert_close(actual, _torchvision(images, boxes, size), atol=1e-5, rtol=0)


def test_flip_reverses_columns_and_uint8_scale() -> None:
    images = torch.randint(0, 256, (3, 3, 30, 20), dtype=torch.uint8)
    top, left = torch.tensor([0, 4, 9]), torch.tensor([0, 2, 5])
    height, width = torch.tensor([30, 20, 11]), torch.tensor([20, 9, 15])
    flip = torch.tensor([True, False, True])
    plain = resized_crop(images, top, left, height, width, 16, value_scale=1 / 255)
    flipped = resized_crop(images, top, left, height, width, 16, flip=flip, value_scale=1 / 255)
    expected = torch.where(flip.reshape(-1, 1, 1, 1), plain.flip(-1), plain)
    torch.testing.assert_close(flipped, expected, atol=1e-6, rtol=0)
    assert 0.0 <= plain.mean() <= 1.0


def test_downscaling_is_antialiased() -> None:
    # A one-pixel checkerboard shrunk 4x must come out as flat gray, not as aliased stripes.
    checker = (torch.arange(64).reshape(-1, 1) + torch.arange(64)) % 2
    images = checker.float().expand(1, 3, 64, 64)
    full = torch.tensor([0]), torch.tensor([0]), torch.tensor([64]), torch.tensor([64])
    small = resized_crop(images, *full, size=16)
    assert (small - 0.5).abs().max() < 0.02


def test_rows_sum_to_one_and_stay_in_the_box() -> None:
    start, length = torch.tensor([0, 3, 10]), torch.tensor([12, 5, 2])
    matrix = resampling_matrix(start, length, in_size=12, out_size=7)
    torch.testing.assert_close(matrix.sum(2), torch.ones(3, 7))
    columns = torch.arange(12)
    outside = (columns < start[:, None]) | (columns >= (start + length)[:, None])
    assert torch.all(matrix.masked_select(outside.unsqueeze(1).expand_as(matrix)) == 0)
