"""Encoders that trained features must beat: raw pixels and a random network.

On small images a cosine k-NN on the flattened pixels is a strong baseline (CIFAR-10: about
44% top-1 with k=200, T=0.1; the 8x8 scikit-learn digits: about 98%), stronger than a randomly
initialised ResNet. A figure for a trained encoder means something only next to both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def centred_pixels(images: Tensor) -> Tensor:
    """Each image flattened, its mean over all pixels and channels subtracted.

    Args:
        images: (B, C, H, W) float, values in [0, 1].

    Returns:
        (B, C * H * W) float32. With cosine similarity this is the correlation of two images'
        pixels, which ignores overall brightness.
    """
    flat = images.flatten(1).float()
    return flat - flat.mean(dim=1, keepdim=True)


class PixelEncoder(nn.Module):
    """The raw-pixel baseline as an encoder: undoes the evaluation normalisation, then
    :func:`centred_pixels`. Has no parameters; (B, C, H, W) -> (B, C * H * W).

    ``mean``/``std``: the per-channel normalisation the evaluation batches carry
    (``augment.mean``/``augment.std``), so the baseline sees the pixels as stored.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        return centred_pixels(images.float() * self.std + self.mean)
