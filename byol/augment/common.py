"""Checks and small helpers shared by the reference and the batched pipelines.

``[official]`` is github.com/deepmind/deepmind-research, folder ``byol/`` at commit d8df4155.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from byol.config import AugmentConfig, ViewConfig

# ITU-R 601-2 luma weights, the ones torchvision's ``rgb_to_grayscale`` and PIL's ``convert("L")``
# use, so that grayscale, contrast and saturation agree with the reference pipeline.
GRAYSCALE_WEIGHTS = (0.2989, 0.587, 0.114)

_PROBABILITIES = ("flip_prob", "color_jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob")


def blur_kernel_size(image_size: int, blur_kernel_fraction: float) -> int:
    """Side of the Gaussian blur kernel for square crops of side ``image_size``.

    [official] ``utils/augmentations.py:27-66`` uses ``kernel_size = image_size // 10`` and a
    kernel of ``2 * (kernel_size // 2) + 1`` taps: 23 taps at 224 px. We keep that rule for any
    fraction and never go below 3 taps, so 32 px crops get a 3-tap kernel.
    """
    side = int(image_size * blur_kernel_fraction + 1e-9)
    return max(3, 2 * (side // 2) + 1)


def validate_view_config(view: ViewConfig, name: str = "view") -> None:
    """Raise ``ValueError`` naming the field and the fix if ``view`` cannot be sampled."""
    for field_name in _PROBABILITIES:
        value = getattr(view, field_name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"{name}.{field_name}={value} is not a probability; use a value in [0, 1]"
            )
    if not 0.0 < view.crop_scale_min <= view.crop_scale_max <= 1.0:
        raise ValueError(
            f"{name}.crop_scale_min={view.crop_scale_min}, crop_scale_max={view.crop_scale_max}: "
            "need 0 < crop_scale_min <= crop_scale_max <= 1 (fractions of the image area)"
        )
    if not 0.0 < view.crop_ratio_min <= view.crop_ratio_max:
        raise ValueError(
            f"{name}.crop_ratio_min={view.crop_ratio_min}, crop_ratio_max={view.crop_ratio_max}: "
            "need 0 < crop_ratio_min <= crop_ratio_max (width / height, e.g. 3/4 and 4/3)"
        )
    for field_name in ("brightness", "contrast", "saturation"):
        value = getattr(view, field_name)
        if not value >= 0.0:
            raise ValueError(
                f"{name}.{field_name}={value} is negative; use a strength >= 0 "
                "(factors are drawn from [max(0, 1 - s), 1 + s])"
            )
    if not 0.0 <= view.hue <= 0.5:
        raise ValueError(f"{name}.hue={view.hue} is outside [0, 0.5]; hue shifts are in turns")
    if not 0.0 < view.blur_sigma_min <= view.blur_sigma_max:
        raise ValueError(
            f"{name}.blur_sigma_min={view.blur_sigma_min}, blur_sigma_max={view.blur_sigma_max}: "
            "need 0 < blur_sigma_min <= blur_sigma_max (pixels)"
        )
    if not 0.0 < view.blur_kernel_fraction <= 1.0:
        raise ValueError(
            f"{name}.blur_kernel_fraction={view.blur_kernel_fraction} is outside (0, 1]; "
            "the official value is 0.1 (kernel = image side / 10)"
        )
    if not 0.0 <= view.solarize_threshold <= 1.0:
        raise ValueError(
            f"{name}.solarize_threshold={view.solarize_threshold} is outside [0, 1]; "
            "pixel values are in [0, 1] (the paper uses 0.5)"
        )


def check_side(name: str, side: object, fix: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``side`` is an integer of at least 2 pixels."""
    if isinstance(side, bool) or not isinstance(side, int) or side < 2:
        raise ValueError(f"{name}={side!r} must be an integer >= 2 (pixels){fix}")


def validate_normalization(
    image_size: int, mean: Sequence[float], std: Sequence[float]
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Check the output side and the per-channel statistics; return them as 3-tuples."""
    check_side("image_size", image_size)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean={mean} and std={std} need one value per RGB channel (3 each)")
    if not all(math.isfinite(s) and s > 0 for s in std):
        raise ValueError(f"std={std} must be positive and finite for every channel")
    if not all(math.isfinite(m) for m in mean):
        raise ValueError(f"mean={mean} must be finite")
    m0, m1, m2 = (float(m) for m in mean)
    s0, s1, s2 = (float(s) for s in std)
    return (m0, m1, m2), (s0, s1, s2)


def training_view_size(config: AugmentConfig) -> int:
    """Side of the training views: ``view_size``, or ``image_size`` when it is None."""
    return config.image_size if config.view_size is None else config.view_size


def validate_augment_config(config: AugmentConfig) -> None:
    """Check both views and the normalisation of an :class:`AugmentConfig`."""
    validate_normalization(config.image_size, config.mean, config.std)
    if config.view_size is not None:
        check_side(
            "augment.view_size", config.view_size, ", or null to train at augment.image_size"
        )
    validate_view_config(config.view1, "view1")
    validate_view_config(config.view2, "view2")
