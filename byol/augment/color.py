"""Batched photometric operations with one factor per image.

Each function takes float images ``(B, 3, H, W)`` in [0, 1] and per-image parameters of
shape ``(B,)``, and computes what torchvision's functional op of the same name computes for
each image with its own factor (``torchvision.transforms.v2.functional.adjust_brightness``,
``adjust_contrast``, ``adjust_saturation``, ``adjust_hue``, ``rgb_to_grayscale``,
``gaussian_blur``, ``solarize``); ``tests/augment/test_color.py`` pins the equality.
The BYOL parameters of these ops are [official] ``utils/augmentations.py:27-66``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from byol.augment.common import GRAYSCALE_WEIGHTS


def _per_image(factor: torch.Tensor) -> torch.Tensor:
    # (B,) -> (B, 1, 1, 1) so that it broadcasts over (B, C, H, W).
    return factor.reshape(-1, 1, 1, 1)


def rgb_to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma of ``images`` ``(B, 3, H, W)`` -> ``(B, 1, H, W)``, ITU-R 601-2 weights."""
    red, green, blue = images.unbind(dim=-3)
    gray = red.mul(GRAYSCALE_WEIGHTS[0]).add_(green, alpha=GRAYSCALE_WEIGHTS[1])
    return gray.add_(blue, alpha=GRAYSCALE_WEIGHTS[2]).unsqueeze(-3)


def blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(factor * images + (1 - factor) * other, 0, 1)`` with ``factor`` ``(B,)``.

    Brightness (``other = 0``), contrast (``other`` = mean luma) and saturation
    (``other`` = luma image) are all this blend, as in torchvision.
    """
    factor4 = _per_image(factor)
    return (images * factor4).add_(other * (1.0 - factor4)).clamp_(0.0, 1.0)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply by ``factor`` ``(B,)`` and clamp to [0, 1]."""
    return (images * _per_image(factor)).clamp_(0.0, 1.0)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its own luma (one scalar per image)."""
    mean = rgb_to_grayscale(images).mean(dim=(-3, -2, -1), keepdim=True)
    return blend(images, mean, factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its luma image."""
    return blend(images, rgb_to_grayscale(images), factor)


def adjust_hue(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of every pixel by ``factor`` ``(B,)`` turns, in [-0.5, 0.5].

    A hue rotation keeps each pixel's max (V) and max - min (chroma), so we rebuild RGB from
    the shifted hue with the closed form ``channel = max - chroma * clamp(min(k, 4 - k), 0, 1)``,
    ``k = (n + 6 h) mod 6`` with ``n = 5, 3, 1`` for R, G, B, instead of a full HSV round trip.
    The hue itself is computed as in torchvision (after PIL): from the channel holding the max,
    red first, then green.
    """
    red, green, blue = images.unbind(dim=-3)
    max_c = torch.maximum(torch.maximum(red, green), blue)
    chroma = max_c - torch.minimum(torch.minimum(red, green), blue)
    red_is_max = max_c == red
    green_is_max = max_c == green
    # Hue in sixths of a turn, in (-1, 5]: sector offset + position inside the sector.
    numerator = torch.where(
        red_is_max, green - blue, torch.where(green_is_max, blue - red, red - green)
    )
    sector = torch.where(red_is_max, 0.0, torch.where(green_is_max, 2.0, 4.0))
    # Gray pixels (chroma 0) have numerator 0; any finite hue works for them.
    hue6 = numerator.div_(chroma.clamp(min=1e-30)).add_(sector)
    hue6 = hue6.add_(6.0 * factor.reshape(-1, 1, 1).to(images.dtype))
    # n = 5, 3, 1 for R, G, B; arange avoids a host-to-device copy on accelerators.
    offsets = 5.0 - 2.0 * torch.arange(3, dtype=images.dtype, device=images.device)
    k = torch.remainder(hue6.unsqueeze(-3) + offsets.reshape(3, 1, 1), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return ramp.mul_(chroma.unsqueeze(-3)).neg_().add_(max_c.unsqueeze(-3))


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma copied to three equal channels, ``(B, 3, H, W)``."""
    return rgb_to_grayscale(images).repeat(1, 3, 1, 1)


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``(B, kernel_size)`` for per-image ``sigma`` ``(B,)``."""
    radius = kernel_size // 2
    offsets = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    logits = -0.5 * (offsets.unsqueeze(0) / sigma.unsqueeze(1)) ** 2
    return torch.softmax(logits, dim=1)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with one ``sigma`` ``(B,)`` per image, reflect padding.

    A depthwise convolution over the ``B * 3`` channels of the batch, first along rows then
    along columns; torchvision convolves with the outer product, which is the same filter.
    """
    batch, channels, height, width = images.shape
    radius = kernel_size // 2
    kernels = gaussian_kernels(sigma, kernel_size).repeat_interleave(channels, dim=0)
    flat = images.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(
        flat, kernels.reshape(batch * channels, 1, kernel_size, 1), groups=batch * channels
    )
    flat = F.conv2d(
        flat, kernels.reshape(batch * channels, 1, 1, kernel_size), groups=batch * channels
    )
    return flat.reshape(batch, channels, height, width)


def solarize(images: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert pixels at or above ``threshold``: ``where(x >= t, 1 - x, x)``."""
    return torch.where(images >= threshold, 1.0 - images, images)
