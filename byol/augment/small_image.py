"""Augmentation preset for small images (CIFAR-sized, 32 px).

Source: solo-learn's CIFAR BYOL recipe (github.com/vturrisi/solo-learn,
``scripts/pretrain/cifar/byol.yaml`` at 4d64ac0, which selects
``scripts/pretrain/cifar/augmentations/asymmetric.yaml`` at 2432289): crop scale 0.08-1, flip
0.5, colour jitter 0.8 (0.4, 0.4, 0.2, 0.1), grayscale 0.2, **no Gaussian blur in either
view** (blurring a 32 px image destroys most of its content), solarize 0.0 / 0.2. That recipe
reaches 92.58% linear top-1 on CIFAR-10 with a ResNet-18 (solo-learn README). CIFAR-10
statistics for the normalisation are solo-learn's too (``solo/data/pretrain_dataloader.py``,
``MEANS_N_STD``).
"""

from __future__ import annotations

from byol.augment.common import validate_augment_config
from byol.config import AugmentConfig, ViewConfig

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def small_image_augment_config(
    image_size: int = 32,
    mean: tuple[float, float, float] = CIFAR10_MEAN,
    std: tuple[float, float, float] = CIFAR10_STD,
) -> AugmentConfig:
    """BYOL views for small images: the paper's operations without blur (solo-learn, above).

    Args:
        image_size: side of the square crops (32 for CIFAR).
        mean, std: normalisation; CIFAR-10 statistics by default.

    Returns:
        An :class:`AugmentConfig` with ``view1`` (solarize 0) and ``view2`` (solarize 0.2).
    """
    config = AugmentConfig(
        image_size=image_size,
        view1=ViewConfig(blur_prob=0.0, solarize_prob=0.0),
        view2=ViewConfig(blur_prob=0.0, solarize_prob=0.2),
        mean=mean,
        std=std,
    )
    validate_augment_config(config)
    return config
