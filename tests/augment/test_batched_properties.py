"""Property tests over what test_batched.py's size property leaves fixed: the input dtype and
the masked-operation mode of the batched pipeline, and every PIL image mode of the reference
pipeline. Any valid input gives finite, normalised views of the configured shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from byol.augment import BatchedTwoViews, ReferenceTwoViews
from byol.config import AugmentConfig

pytestmark = pytest.mark.usefixtures("one_thread")

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
LOW = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).reshape(3, 1, 1)
HIGH = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD, strict=True)]).reshape(3, 1, 1)
DTYPES = [torch.uint8, torch.float32, torch.float64, torch.float16, torch.bfloat16]
MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK", "YCbCr"]


def _check(view: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert view.shape == shape and view.dtype == torch.float32
    assert torch.isfinite(view).all()
    assert (view >= LOW - 1e-3).all() and (view <= HIGH + 1e-3).all()


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 6),
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    size=st.sampled_from([4, 16]),
    dtype=st.sampled_from(DTYPES),
    subset_ops=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_dtype_and_mode_gives_finite_normalised_views(
    batch: int, height: int, width: int, size: int, dtype: torch.dtype, subset_ops: bool, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(
        0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator
    )
    if dtype != torch.uint8:
        images = (images.float() / 255.0).to(dtype)  # floats in [0, 1]
    augment = BatchedTwoViews(AugmentConfig(image_size=size, mean=MEAN, std=STD), subset_ops)
    for view in augment(images, generator):
        _check(view, (batch, 3, size, size))


def _image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "F":
        return Image.fromarray(rng.random((height, width), dtype=np.float32))
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return rgb.convert(mode)


@settings(max_examples=30, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    size=st.sampled_from([4, 16]),
    seed=st.integers(0, 2**31 - 1),
)
def test_reference_views_of_any_pil_mode(
    mode: str, width: int, height: int, size: int, seed: int
) -> None:
    image = _image(mode, width, height, seed)
    assert image.mode == mode
    torch.manual_seed(seed)
    views = ReferenceTwoViews(AugmentConfig(image_size=size, mean=MEAN, std=STD))(image)
    for view in views:
        _check(view, (3, size, size))
