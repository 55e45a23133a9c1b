"""The per-image torchvision reference pipeline, the eval transform and the presets."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from byol.augment import (
    EvalTransform,
    ReferenceTwoViews,
    ReferenceView,
    blur_kernel_size,
    small_image_augment_config,
)
from byol.config import AugmentConfig, ViewConfig

pytestmark = pytest.mark.usefixtures("one_thread")

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)


def _pil(height: int = 40, width: int = 30, mode: str = "RGB") -> Image.Image:
    generator = torch.Generator().manual_seed(0)
    array = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator)
    return Image.fromarray(array.numpy()).convert(mode)


def test_two_views_from_pil_and_tensor() -> None:
    augment = ReferenceTwoViews(AugmentConfig(image_size=24, mean=MEAN, std=STD))
    tensor = torch.randint(0, 256, (3, 13, 7), dtype=torch.uint8)
    for image in (_pil(), _pil(mode="L"), tensor):
        view1, view2 = augment(image)
        for view in (view1, view2):
            assert type(view) is torch.Tensor
            assert view.shape == (3, 24, 24) and view.dtype == torch.float32
            assert torch.isfinite(view).all()
        assert not torch.equal(view1, view2)


def test_views_follow_the_paper_asymmetry() -> None:
    augment = ReferenceTwoViews(AugmentConfig())
    assert augment.view1.view.blur_prob == 1.0 and augment.view1.view.solarize_prob == 0.0
    assert augment.view2.view.blur_prob == 0.1 and augment.view2.view.solarize_prob == 0.2
    assert augment.view1.blur_kernel_size == 23  # [official]: 224 // 10 = 22 -> 23 taps


def test_always_solarized_gray_view_is_solarized_gray() -> None:
    view = ViewConfig(
        color_jitter_prob=0.0, grayscale_prob=1.0, blur_prob=0.0, solarize_prob=1.0, flip_prob=0.0
    )
    image = torch.full((3, 16, 16), 230, dtype=torch.uint8)
    out = ReferenceView(view, 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))(image)
    gray = 230 / 255 * (0.2989 + 0.587 + 0.114)  # luma weights sum to 0.9999
    torch.testing.assert_close(out, torch.full((3, 8, 8), 1 - gray), atol=1e-6, rtol=0)


def test_reference_rejects_bad_input() -> None:
    view = ReferenceView(ViewConfig(), 16)
    with pytest.raises(ValueError, match="uint8"):
        view(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="color_jitter_prob"):
        ReferenceView(ViewConfig(color_jitter_prob=2.0), 16)
    with pytest.raises(ValueError, match="image_size"):
        ReferenceView(ViewConfig(), 1)


def test_eval_transform_resizes_then_centre_crops() -> None:
    transform = EvalTransform(224, MEAN, STD)
    assert transform.resize_size == 256
    out = transform(_pil(300, 400))
    assert out.shape == (3, 224, 224) and torch.equal(out, transform(_pil(300, 400)))
    # A flat image stays flat: the output is its normalised colour everywhere.
    flat = Image.new("RGB", (50, 70), (255, 102, 0))
    expected = torch.tensor([(1.0 - 0.5) / 0.2, (0.4 - 0.4) / 0.25, (0.0 - 0.3) / 0.3])
    torch.testing.assert_close(transform(flat), expected.reshape(3, 1, 1).expand(3, 224, 224))


def test_eval_transform_without_resize_ratio_keeps_small_images() -> None:
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = EvalTransform(32, MEAN, STD, resize_ratio=None)(image)
    expected = (image.float() / 255 - torch.tensor(MEAN).reshape(3, 1, 1)) / torch.tensor(
        STD
    ).reshape(3, 1, 1)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="resize_ratio"):
        EvalTransform(32, resize_ratio=0.5)


@pytest.mark.parametrize(("size", "taps"), [(224, 23), (96, 9), (100, 11), (32, 3), (8, 3)])
def test_blur_kernel_size_follows_the_official_rule(size: int, taps: int) -> None:
    assert blur_kernel_size(size, 0.1) == taps


def test_small_image_preset_is_solo_learns_cifar_recipe() -> None:
    config = small_image_augment_config(32)
    assert config.image_size == 32
    assert (config.view1.blur_prob, config.view2.blur_prob) == (0.0, 0.0)
    assert (config.view1.solarize_prob, config.view2.solarize_prob) == (0.0, 0.2)
    for view in (config.view1, config.view2):
        assert (view.crop_scale_min, view.crop_scale_max) == (0.08, 1.0)
        assert (view.color_jitter_prob, view.grayscale_prob, view.flip_prob) == (0.8, 0.2, 0.5)
        assert (view.brightness, view.contrast, view.saturation, view.hue) == (0.4, 0.4, 0.2, 0.1)
    assert config.mean == (0.4914, 0.4822, 0.4465)
