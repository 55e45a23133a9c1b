"""How a decoded image of any size becomes a fixed-size square for the uint8 cache.

Two policies, named in each cache's ``meta.json`` and key:

- :data:`WHOLE_IMAGE` (training): the whole image resized to ``S x S`` (bicubic), aspect ratio
  not kept. Random crops then range over the entire picture, edges included, as
  ``RandomResizedCrop`` on the original does; crop areas are the same fractions of the image
  as on the original (area fractions survive a per-axis scaling). What it costs: content is
  stretched by ``H / W`` of its image (x 0.75 along the width of a 4:3 landscape photo), an
  extra aspect change on top of the random 3/4-4/3 of the crop, and the longer side is stored
  with ``S`` pixels instead of ``S * W / H``. Square images (digits, CIFAR-10) are unaffected.
- :data:`OFFICIAL_TEST` (evaluation): the official test transform at ``image_size``: shorter
  side resized to ``round(image_size * 256 / 224)``, then the centre ``image_size`` square
  ([official] ``utils/dataset.py``: 256 / 224 at 224 px), computed by torchvision itself so the
  cached pixels are those of ``Resize(r) + CenterCrop(image_size)`` on the decoded image.
"""

from __future__ import annotations

from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

WHOLE_IMAGE = "whole-image-to-SxS-bicubic"
OFFICIAL_TEST = "shorter-side-to-round(S*256/224)-centre-crop-S-bicubic"
POLICIES = (WHOLE_IMAGE, OFFICIAL_TEST)


def eval_resize_size(image_size: int) -> int:
    """Shorter side before the centre crop of the official test transform:
    ``round(image_size * 256 / 224)`` (224 -> 256, 96 -> 110, 64 -> 73, 32 -> 37)."""
    return round(image_size * 256 / 224)


def whole_image_square(image: Image.Image, size: int) -> Image.Image:
    """The whole ``image`` resized to ``size x size`` (bicubic, one resampling step)."""
    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.BICUBIC)


def official_test_crop(image: Image.Image, image_size: int) -> Image.Image:
    """torchvision's ``Resize(eval_resize_size(image_size))`` then ``CenterCrop(image_size)``,
    bicubic, on a PIL image: ``image_size x image_size`` out."""
    resized = TF.resize(image, [eval_resize_size(image_size)], InterpolationMode.BICUBIC)
    cropped: Image.Image = TF.center_crop(resized, [image_size, image_size])
    return cropped


def fit_image(image: Image.Image, size: int, policy: str) -> Image.Image:
    """``image`` as a ``size x size`` square under ``policy`` (one of :data:`POLICIES`)."""
    if policy == WHOLE_IMAGE:
        return whole_image_square(image, size)
    if policy == OFFICIAL_TEST:
        return official_test_crop(image, size)
    raise ValueError(f"resize policy {policy!r} is not one of {', '.join(POLICIES)}")


def check_policy(policy: str) -> str:
    """Validate a resize policy name; returns it."""
    if policy not in POLICIES:
        raise ValueError(f"resize policy {policy!r} is not one of {', '.join(POLICIES)}")
    return policy


def draft_size(size: int, policy: str) -> int | None:
    """Smallest side the JPEG decoder may downscale to (its 1/2, 1/4, 1/8 DCT scaling), or None
    for a full decode. Training caches use it for speed; evaluation decodes in full, so its
    pixels are exactly torchvision's on the decoded file."""
    return size if policy == WHOLE_IMAGE else None
