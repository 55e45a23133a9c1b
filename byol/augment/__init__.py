"""BYOL augmentations: a per-image torchvision reference and a batched on-device pipeline.

* :class:`ReferenceTwoViews` / :class:`ReferenceView`: per image, for DataLoader workers.
* :class:`BatchedTwoViews` / :class:`BatchedView`: whole uint8 batches on the training
  device, every parameter drawn per image; same distribution as the reference.
* :class:`EvalTransform`: resize + centre crop + normalise for feature extraction.
* :func:`small_image_augment_config`: the CIFAR-sized preset (no blur).

The torch-based names are imported on first use (PEP 562): the presets need only
:func:`small_image_augment_config`, and the command line reads them before loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from byol.augment.common import (
    blur_kernel_size,
    validate_augment_config,
    validate_view_config,
)
from byol.augment.small_image import CIFAR10_MEAN, CIFAR10_STD, small_image_augment_config

# public name -> module that defines it (the ones that import torch)
_LAZY = {
    "BatchedTwoViews": "byol.augment.batched",
    "BatchedView": "byol.augment.batched",
    "TwoViewParams": "byol.augment.batched",
    "ViewParams": "byol.augment.batched",
    "EvalTransform": "byol.augment.reference",
    "ReferenceTwoViews": "byol.augment.reference",
    "ReferenceView": "byol.augment.reference",
}

if TYPE_CHECKING:
    from byol.augment.batched import BatchedTwoViews, BatchedView, TwoViewParams, ViewParams
    from byol.augment.reference import EvalTransform, ReferenceTwoViews, ReferenceView


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'byol.augment' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "BatchedTwoViews",
    "BatchedView",
    "EvalTransform",
    "ReferenceTwoViews",
    "ReferenceView",
    "TwoViewParams",
    "ViewParams",
    "blur_kernel_size",
    "small_image_augment_config",
    "validate_augment_config",
    "validate_view_config",
]
