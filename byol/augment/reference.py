"""Per-image augmentation built from torchvision transforms, for DataLoader workers.

This is the readable reference for the batched pipeline in :mod:`byol.augment.batched`: every
random parameter is drawn per image by torchvision (from the global torch generator, which the
DataLoader seeds per worker). Operations and defaults follow [official]
``utils/augmentations.py:27-66`` and [paper] Appendix B, Table 6, in the official order:

random resized crop (bicubic) -> horizontal flip -> colour jitter (brightness, contrast,
saturation, hue in random order) -> grayscale -> Gaussian blur -> solarize -> normalise.

``[official]`` is github.com/deepmind/deepmind-research, folder ``byol/`` at commit d8df4155.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import v2

from byol.augment.common import (
    blur_kernel_size,
    training_view_size,
    validate_augment_config,
    validate_normalization,
    validate_view_config,
)
from byol.config import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, ViewConfig

ImageInput = Image.Image | torch.Tensor

_BICUBIC = v2.InterpolationMode.BICUBIC


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    # torchvision returns tv_tensors.Image; callers get a plain tensor.
    return tensor.as_subclass(torch.Tensor)


class ReferenceView:
    """One augmented view of one image: PIL image or uint8 ``(3, H, W)`` -> float32 ``(3, S, S)``.

    The crop and flip run on the input type (PIL or uint8, bicubic with antialiasing as in
    [official] ``utils/dataset.py:206-233``), the colour operations on float32 in [0, 1], and
    the result is normalised with ``mean`` and ``std``.

    Args:
        view: augmentation parameters of this view.
        image_size: side ``S`` of the square output.
        mean, std: per-channel normalisation applied last.
    """

    def __init__(
        self,
        view: ViewConfig,
        image_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        validate_view_config(view)
        mean3, std3 = validate_normalization(image_size, mean, std)
        self.view = view
        self.image_size = image_size
        self.crop = v2.RandomResizedCrop(
            size=(image_size, image_size),
            scale=(view.crop_scale_min, view.crop_scale_max),
            ratio=(view.crop_ratio_min, view.crop_ratio_max),
            interpolation=_BICUBIC,
            antialias=True,
        )
        self.color_jitter = v2.ColorJitter(
            brightness=view.brightness,
            contrast=view.contrast,
            saturation=view.saturation,
            hue=view.hue,
        )
        self.blur_kernel_size = blur_kernel_size(image_size, view.blur_kernel_fraction)
        self.transform = v2.Compose(
            [
                self.crop,
                v2.RandomHorizontalFlip(p=view.flip_prob),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.RandomApply([self.color_jitter], p=view.color_jitter_prob),
                v2.RandomGrayscale(p=view.grayscale_prob),
                v2.RandomApply(
                    [
                        v2.GaussianBlur(
                            kernel_size=self.blur_kernel_size,
                            sigma=(view.blur_sigma_min, view.blur_sigma_max),
                        )
                    ],
                    p=view.blur_prob,
                ),
                v2.RandomSolarize(threshold=view.solarize_threshold, p=view.solarize_prob),
                v2.Normalize(mean=list(mean3), std=list(std3)),
            ]
        )

    def __call__(self, image: ImageInput) -> torch.Tensor:
        """Augment one image.

        Args:
            image: PIL image (converted to RGB) or uint8 tensor ``(3, H, W)``.

        Returns:
            float32 tensor ``(3, S, S)``, normalised.
        """
        if isinstance(image, Image.Image):
            if image.mode != "RGB":
                image = image.convert("RGB")
        elif isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(
                    f"expected a uint8 tensor of shape (3, H, W), got {image.dtype} "
                    f"{tuple(image.shape)}; convert with (x * 255).round().to(torch.uint8)"
                )
        else:
            raise ValueError(f"expected a PIL image or a uint8 tensor, got {type(image).__name__}")
        return _plain(self.transform(image))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform})"


class ReferenceTwoViews:
    """The two asymmetric BYOL views of one image, each drawn independently.

    View 1 always blurs and never solarizes, view 2 blurs with probability 0.1 and solarizes
    with probability 0.2 under the default config ([paper] Table 6,
    [official] ``utils/augmentations.py:27-66``).

    Args:
        config: the augmentation config (``image_size``, ``view1``, ``view2``, ``mean``, ``std``).
    """

    def __init__(self, config: AugmentConfig) -> None:
        validate_augment_config(config)
        self.view1 = ReferenceView(
            config.view1, training_view_size(config), config.mean, config.std
        )
        self.view2 = ReferenceView(
            config.view2, training_view_size(config), config.mean, config.std
        )

    def __call__(self, image: ImageInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(view1, view2)``, each float32 ``(3, S, S)``, normalised."""
        return self.view1(image), self.view2(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(view1={self.view1!r}, view2={self.view2!r})"


class EvalTransform:
    """Deterministic transform for feature extraction: resize, centre crop, normalise.

    The shorter side is resized (bicubic, antialiased) to ``round(image_size * resize_ratio)``
    and the centre ``image_size`` square is kept: the usual ImageNet protocol with
    ``resize_ratio = 256 / 224``. For small images (CIFAR at 32 px) pass ``resize_ratio=None``:
    the shorter side is resized straight to ``image_size`` (a no-op for 32 px inputs).

    Args:
        image_size: side ``S`` of the output.
        mean, std: per-channel normalisation.
        resize_ratio: resize side over crop side, >= 1, or None.

    Call: PIL image or uint8 ``(3, H, W)`` -> float32 ``(3, S, S)``.
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize_ratio: float | None = 256 / 224,
    ) -> None:
        mean3, std3 = validate_normalization(image_size, mean, std)
        if resize_ratio is not None and not resize_ratio >= 1.0:
            raise ValueError(
                f"resize_ratio={resize_ratio} must be >= 1 (resize side / crop side, e.g. 256/224) "
                "or None to resize straight to image_size"
            )
        resize_size = image_size if resize_ratio is None else round(image_size * resize_ratio)
        self.image_size = image_size
        self.resize_size = resize_size
        self.transform = v2.Compose(
            [
                v2.Resize(resize_size, interpolation=_BICUBIC, antialias=True),
                v2.CenterCrop(image_size),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=list(mean3), std=list(std3)),
            ]
        )

    def __call__(self, image: ImageInput) -> torch.Tensor:
        """Return the float32 ``(3, S, S)`` normalised centre crop of ``image``."""
        if isinstance(image, Image.Image) and image.mode != "RGB":
            image = image.convert("RGB")
        return _plain(self.transform(image))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform})"
