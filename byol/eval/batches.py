"""Unaugmented evaluation batches of a uint8 image cache, normalised as in training."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from byol.config import AugmentConfig


def eval_batches(
    images: Tensor, labels: Tensor, augment: AugmentConfig, batch_size: int, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """Unaugmented, normalised batches of a uint8 cache, resized to ``augment.image_size``.

    (N, 3, S, S) uint8 -> batches of ((B, 3, image_size, image_size) float32, (B,) int64).
    """
    mean = torch.tensor(augment.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(augment.std, device=device).view(1, 3, 1, 1)
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True).float() / 255.0
        if batch.shape[-1] != augment.image_size:
            batch = F.interpolate(
                batch,
                size=(augment.image_size, augment.image_size),
                mode="bicubic",
                antialias=True,
                align_corners=False,
            )
            batch = batch.clamp_(0.0, 1.0)
        yield (batch - mean) / std, labels[start : start + batch_size]
