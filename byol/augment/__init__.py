"""BYOL augmentations: a per-image torchvision reference and a batched on-device pipeline.

* :class:`ReferenceTwoViews` / :class:`ReferenceView`: per image, for DataLoader workers.
* :class:`BatchedTwoViews` / :class:`BatchedView`: whole uint8 batches on the training
  device, every parameter drawn per image; same distribution as the reference.
* :class:`EvalTransform`: resize + centre crop + normalise for feature extraction.
* :func:`small_image_augment_config`: the CIFAR-sized preset (no blur).
"""

from byol.augment.batched import BatchedTwoViews, BatchedView, TwoViewParams, ViewParams
from byol.augment.common import (
    blur_kernel_size,
    validate_augment_config,
    validate_view_config,
)
from byol.augment.reference import EvalTransform, ReferenceTwoViews, ReferenceView
from byol.augment.small_image import CIFAR10_MEAN, CIFAR10_STD, small_image_augment_config

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
