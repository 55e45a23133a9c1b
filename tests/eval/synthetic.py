"""Synthetic labelled features shared by the evaluation tests."""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_clusters(
    num_per_class: int, num_classes: int, dim: int, *, separation: float = 6.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Well-separated isotropic clusters: features (N, dim) float32 and labels (N,) int64.

    Cluster centres are random directions scaled by ``separation`` (unit noise), so both
    cosine and Euclidean classifiers separate them almost perfectly.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=generator)
    centres = separation * centres / centres.norm(dim=1, keepdim=True)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    features = centres[labels] + torch.randn(len(labels), dim, generator=generator)
    order = torch.randperm(len(labels), generator=generator)
    return features[order], labels[order]
