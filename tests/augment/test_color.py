"""Every batched colour op equals torchvision's functional op, image by image."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from byol.augment import color

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(batch: int = 6, height: int = 17, width: int = 23, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=generator)
    images[0, :, :4] = 0.5  # gray pixels: no hue, zero chroma
    images[1, :, :3] = 1.0  # saturated white
    images[1, 0, 3:6] = 0.0  # pure cyan-ish pixels with a zero channel
    return images


def _per_image(images: torch.Tensor, fn, factors: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return torch.stack([fn(img, f.item()) for img, f in zip(images, factors, strict=True)])


@pytest.mark.parametrize(
    ("ours", "theirs", "low", "high"),
    [
        (color.adjust_brightness, TF.adjust_brightness, 0.0, 2.0),
        (color.adjust_contrast, TF.adjust_contrast, 0.0, 2.0),
        (color.adjust_saturation, TF.adjust_saturation, 0.0, 2.0),
        (color.adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
    ids=["brightness", "contrast", "saturation", "hue"],
)
def test_jitter_op_matches_torchvision(ours, theirs, low: float, high: float) -> None:  # type: ignore[no-untyped-def]
    images = _images()
    factors = torch.linspace(low, high, images.shape[0])
    expected = _per_image(images, theirs, factors)
    actual = ours(images, factors)
    torch.testing.assert_close(actual, expected, atol=2e-6, rtol=0)
    assert actual.min() >= 0 and actual.max() <= 1


def test_hue_rotation_moves_pure_red_by_a_third() -> None:
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = color.adjust_hue(red, torch.tensor([1.0 / 3.0]))
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_grayscale_matches_torchvision_and_has_equal_channels() -> None:
    images = _images()
    gray = color.grayscale(images)
    expected = torch.stack([TF.rgb_to_grayscale(img, num_output_channels=3) for img in images])
    torch.testing.assert_close(gray, expected, atol=1e-7, rtol=0)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])


@pytest.mark.parametrize("kernel_size", [3, 9])
def test_blur_matches_torchvision_per_image_sigma(kernel_size: int) -> None:
    images = _images(height=20, width=15)
    sigmas = torch.linspace(0.1, 2.0, images.shape[0])
    actual = color.gaussian_blur(images, sigmas, kernel_size)
    expected = torch.stack(
        [
            TF.gaussian_blur(img, [kernel_size, kernel_size], [s.item(), s.item()])
            for img, s in zip(images, sigmas, strict=True)
        ]
    )
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)


def test_blur_kernels_are_normalised_gaussians() -> None:
    kernels = color.gaussian_kernels(torch.tensor([0.5, 2.0]), 7)
    torch.testing.assert_close(kernels.sum(1), torch.ones(2))
    # A wider sigma puts less weight on the centre tap.
    assert kernels[0, 3] > kernels[1, 3]
    ratio = kernels[1, 4] / kernels[1, 3]
    torch.testing.assert_close(ratio, torch.exp(torch.tensor(-0.5 / 4.0)))


def test_solarize_matches_torchvision() -> None:
    images = _images()
    expected = TF.solarize(images, 0.5)
    torch.testing.assert_close(color.solarize(images, 0.5), expected, atol=0, rtol=0)
