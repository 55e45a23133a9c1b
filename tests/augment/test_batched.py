"""The batched pipeline: per-image draws, torchvision-equal ops, the paper's rates."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torchvision import transforms as transforms_v1
from torchvision.transforms.v2 import functional as TF

from byol.augment import (
    BatchedTwoViews,
    BatchedView,
    ReferenceTwoViews,
    ReferenceView,
    ViewParams,
    blur_kernel_size,
)
from byol.augment.batched import BRIGHTNESS, CONTRAST, HUE, SATURATION
from byol.config import AugmentConfig, ViewConfig

pytestmark = pytest.mark.usefixtures("one_thread")

BICUBIC = TF.InterpolationMode.BICUBIC
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Lowest and highest normalised value per channel: normalisation of [0, 1].
LOW = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).reshape(1, 3, 1, 1)
HIGH = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD, strict=True)]).reshape(1, 3, 1, 1)


def _uint8_images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator)


def _torchvision_view(
    images: torch.Tensor, params: ViewParams, view: ViewConfig, size: int
) -> torch.Tensor:
    """The same view, image by image, with torchvision's functional ops and ``params``."""
    kernel = blur_kernel_size(size, view.blur_kernel_fraction)
    adjust = {
        BRIGHTNESS: (TF.adjust_brightness, params.brightness),
        CONTRAST: (TF.adjust_contrast, params.contrast),
        SATURATION: (TF.adjust_saturation, params.saturation),
        HUE: (TF.adjust_hue, params.hue),
    }
    outputs = []
    for i in range(images.shape[0]):
        box = [int(v[i]) for v in (params.crop_top, params.crop_left)]
        box += [int(params.crop_height[i]), int(params.crop_width[i])]
        x = images[i].float() / 255
        x = TF.resized_crop(x, *box, [size, size], interpolation=BICUBIC, antialias=True)
        x = x.clamp(0, 1)
        if params.flip[i]:
            x = TF.horizontal_flip(x)
        if params.color_jitter[i]:
            for op in params.jitter_order[i].tolist():
                fn, factors = adjust[op]
                x = fn(x, factors[i].item())
        if params.grayscale[i]:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if params.blur[i]:
            sigma = params.blur_sigma[i].item()
            x = TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
        if params.solarize[i]:
            x = TF.solarize(x, view.solarize_threshold)
        outputs.append(TF.normalize(x, list(MEAN), list(STD)))
    return torch.stack(outputs)


# Every operation fires often enough to be exercised in a batch of 16.
BUSY_VIEW = ViewConfig(color_jitter_prob=0.9, grayscale_prob=0.3, blur_prob=0.6, solarize_prob=0.5)


@pytest.mark.parametrize("subset_ops", [True, False], ids=["subset", "where"])
@pytest.mark.parametrize(("size", "height", "width"), [(32, 32, 32), (24, 45, 37)])
def test_apply_equals_torchvision_composition(
    subset_ops: bool, size: int, height: int, width: int
) -> None:
    view = BatchedView(BUSY_VIEW, size, MEAN, STD, subset_ops=subset_ops)
    images = _uint8_images(16, height, width)
    params = view.sample_params(16, height, width, generator=torch.Generator().manual_seed(1))
    assert params.color_jitter.any() and params.grayscale.any() and params.solarize.any()
    assert params.blur.any() and not params.blur.all()
    actual = view.apply_params(images, params)
    expected = _torchvision_view(images, params, BUSY_VIEW, size)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_forward_shapes_dtypes_and_range() -> None:
    augment = BatchedTwoViews(AugmentConfig(image_size=16))
    view1, view2 = augment(_uint8_images(4, 20, 30))
    for view in (view1, view2):
        assert view.shape == (4, 3, 16, 16) and view.dtype == torch.float32
        assert torch.isfinite(view).all()
        assert (view >= LOW - 1e-5).all() and (view <= HIGH + 1e-5).all()


def test_copies_of_one_image_get_different_views() -> None:
    augment = BatchedTwoViews(AugmentConfig(image_size=16))
    images = _uint8_images(1, 24, 24).expand(2, 3, 24, 24)
    generator = torch.Generator().manual_seed(0)
    params = augment.sample_params(2, 24, 24, generator=generator)
    for p in (params.view1, params.view2):
        boxes = torch.stack([p.crop_top, p.crop_left, p.crop_height, p.crop_width], 1)
        assert not torch.equal(boxes[0], boxes[1])
        assert p.brightness[0] != p.brightness[1] and p.hue[0] != p.hue[1]
    view1, view2 = augment.apply_params(images, params)
    assert not torch.allclose(view1[0], view1[1]) and not torch.allclose(view1[0], view2[0])


def test_seeded_generator_reproduces_views() -> None:
    augment = BatchedTwoViews(AugmentConfig(image_size=16))
    images = _uint8_images(3, 20, 20)
    first = augment(images, torch.Generator().manual_seed(7))
    again = augment(images, torch.Generator().manual_seed(7))
    other = augment(images, torch.Generator().manual_seed(8))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_fused_two_views_equal_separate_views() -> None:
    config = AugmentConfig(image_size=16)
    augment = BatchedTwoViews(config)
    assert augment.fuse_views
    images = _uint8_images(5, 20, 24)
    params = augment.sample_params(5, 20, 24, generator=torch.Generator().manual_seed(2))
    view1, view2 = augment.apply_params(images, params)
    torch.testing.assert_close(view1, augment.view1.apply_params(images, params.view1))
    torch.testing.assert_close(view2, augment.view2.apply_params(images, params.view2))


def test_subset_and_where_modes_agree() -> None:
    config = AugmentConfig(image_size=16, view1=BUSY_VIEW, view2=BUSY_VIEW)
    images = _uint8_images(12, 20, 20)
    subset = BatchedTwoViews(config, subset_ops=True)
    where = BatchedTwoViews(config, subset_ops=False)
    params = subset.sample_params(12, 20, 20, generator=torch.Generator().manual_seed(3))
    for a, b in zip(
        subset.apply_params(images, params), where.apply_params(images, params), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_compiled_pipeline_equals_eager() -> None:
    """``train.compile`` compiles ``apply_params`` whole (fullgraph): no graph break may creep in."""
    config = AugmentConfig(image_size=16, view1=BUSY_VIEW, view2=BUSY_VIEW)
    augment = BatchedTwoViews(config)  # on the CPU: subset ops eager, torch.where compiled
    compiled = torch.compile(augment.apply_params, fullgraph=True)
    images = _uint8_images(8, 20, 20)
    for seed in (4, 5):  # new parameters, same shapes: no recompilation needed, same results
        params = augment.sample_params(8, 20, 20, generator=torch.Generator().manual_seed(seed))
        for a, b in zip(
            compiled(images, params), augment.apply_params(images, params), strict=True
        ):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_paper_rates_of_blur_solarize_flip_jitter_grayscale() -> None:
    # [paper] Table 6: blur 1.0 / 0.1, solarize 0.0 / 0.2; both: flip 0.5, jitter 0.8, gray 0.2.
    augment = BatchedTwoViews(AugmentConfig(image_size=32))
    n = 20_000
    params = augment.sample_params(n, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = {
        "view1": {"blur": 1.0, "solarize": 0.0},
        "view2": {"blur": 0.1, "solarize": 0.2},
    }
    for name, p in (("view1", params.view1), ("view2", params.view2)):
        rates = {
            "blur": p.blur,
            "solarize": p.solarize,
            "flip": p.flip,
            "color_jitter": p.color_jitter,
            "grayscale": p.grayscale,
        }
        target = {**expected[name], "flip": 0.5, "color_jitter": 0.8, "grayscale": 0.2}
        for op, fired in rates.items():
            rate = fired.float().mean().item()
            tolerance = 4 * math.sqrt(target[op] * (1 - target[op]) / n) + 1e-9
            assert abs(rate - target[op]) <= tolerance, (name, op, rate)
    sigma = params.view1.blur_sigma
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0 and abs(sigma.mean().item() - 1.05) < 0.02


@pytest.mark.parametrize(("height", "width"), [(48, 64), (6, 90)], ids=["regular", "fallback"])
def test_crop_distribution_matches_torchvision(height: int, width: int) -> None:
    view = ViewConfig()
    n = 3000
    params = BatchedView(view, 16).sample_params(
        n, height, width, generator=torch.Generator().manual_seed(0)
    )
    ours = {
        "scale": (params.crop_height * params.crop_width).double() / (height * width),
        "ratio": params.crop_width.double() / params.crop_height,
        "top": params.crop_top.double(),
        "left": params.crop_left.double(),
    }
    image = torch.zeros(3, height, width)
    scale, ratio = (
        (view.crop_scale_min, view.crop_scale_max),
        (
            view.crop_ratio_min,
            view.crop_ratio_max,
        ),
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        boxes = torch.tensor(
            [transforms_v1.RandomResizedCrop.get_params(image, scale, ratio) for _ in range(n)]
        ).double()
    theirs = {
        "scale": boxes[:, 2] * boxes[:, 3] / (height * width),
        "ratio": boxes[:, 3] / boxes[:, 2],
        "top": boxes[:, 0],
        "left": boxes[:, 1],
    }
    for key in ours:
        result = stats.ks_2samp(ours[key].numpy(), theirs[key].numpy(), method="asymp")
        assert result.pvalue > 1e-3, (key, result)
    assert (params.crop_top + params.crop_height <= height).all()
    assert (params.crop_left + params.crop_width <= width).all()
    assert (params.crop_height >= 1).all() and (params.crop_width >= 1).all()


def test_jitter_factors_and_order_match_torchvision() -> None:
    view = ViewConfig()
    reference = ReferenceView(view, 16).color_jitter
    n = 3000
    params = BatchedView(view, 16).sample_params(
        n, 16, 16, generator=torch.Generator().manual_seed(0)
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        draws = [
            transforms_v1.ColorJitter.get_params(
                reference.brightness, reference.contrast, reference.saturation, reference.hue
            )
            for _ in range(n)
        ]
    for column, name in enumerate(("brightness", "contrast", "saturation", "hue"), start=1):
        theirs = [d[column] for d in draws]
        result = stats.ks_2samp(getattr(params, name).numpy(), theirs)
        assert result.pvalue > 1e-3, (name, result)
    # Each of the 24 orders is equally likely (chi-square, 23 degrees of freedom).
    counts = Counter(tuple(row) for row in params.jitter_order.tolist())
    assert set(counts) == set(itertools.permutations(range(4)))
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_output_distribution_matches_reference_pipeline() -> None:
    # End to end on one image: the mean of each output channel, over many draws.
    view = ViewConfig(blur_prob=0.5, solarize_prob=0.3)
    image = _uint8_images(1, 32, 32, seed=5)
    n = 500
    batched = BatchedView(view, 16, MEAN, STD)(
        image.expand(n, 3, 32, 32), torch.Generator().manual_seed(0)
    )
    reference = ReferenceView(view, 16, MEAN, STD)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ref = torch.stack([reference(image[0]) for _ in range(n)])
    for statistic in (lambda x: x.mean(dim=(2, 3)), lambda x: x.std(dim=(2, 3))):
        ours, theirs = statistic(batched), statistic(ref)
        for channel in range(3):
            result = stats.ks_2samp(ours[:, channel].numpy(), theirs[:, channel].numpy())
            assert result.pvalue > 1e-3, (channel, result)


def test_grayscale_views_have_equal_channels() -> None:
    view = ViewConfig(grayscale_prob=1.0, solarize_prob=0.0)
    out = BatchedView(view, 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(_uint8_images(4, 20, 20))
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=0, rtol=0)
    torch.testing.assert_close(out[:, 1], out[:, 2], atol=0, rtol=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("blur_prob", 1.5), ("solarize_prob", -0.1), ("crop_scale_min", 0.0), ("hue", 0.7)],
)
def test_bad_config_raises_value_error_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BatchedTwoViews(AugmentConfig(view2=ViewConfig(**{field: value})))


def test_bad_images_raise_value_error() -> None:
    augment = BatchedView(ViewConfig(), 16)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.zeros(2, 3, 8, 8, dtype=torch.int32))


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 8),
    height=st.one_of(st.sampled_from([7, 13]), st.integers(1, 300)),
    width=st.one_of(st.sampled_from([7, 13]), st.integers(1, 300)),
    size=st.sampled_from([4, 16, 32]),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_any_size_gives_finite_normalised_views(
    batch: int, height: int, width: int, size: int, seed: int
) -> None:
    config = AugmentConfig(image_size=size, mean=MEAN, std=STD)
    images = _uint8_images(batch, height, width, seed)
    view1, view2 = BatchedTwoViews(config)(images, torch.Generator().manual_seed(seed))
    for view in (view1, view2):
        assert view.shape == (batch, 3, size, size) and view.dtype == torch.float32
        assert torch.isfinite(view).all()
        assert (view >= LOW - 1e-4).all() and (view <= HIGH + 1e-4).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_the_same_params() -> None:
    augment = BatchedTwoViews(AugmentConfig(image_size=32, view1=BUSY_VIEW, view2=BUSY_VIEW))
    images = _uint8_images(16, 40, 36)
    params = augment.sample_params(16, 40, 36, generator=torch.Generator().manual_seed(0))
    cpu = augment.apply_params(images, params)
    gpu = augment.to("cuda").apply_params(images.cuda(), params.to("cuda"))
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device.type == "cuda"
        torch.testing.assert_close(b.cpu(), a, atol=1e-3, rtol=0)
    generator = torch.Generator(device="cuda").manual_seed(0)
    first = augment(images.cuda(), generator)
    again = augment(images.cuda(), torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(first[0], again[0])
    with pytest.raises(ValueError, match="generator"):
        augment(images.cuda(), torch.Generator().manual_seed(0))


def test_view_size_sets_the_training_views_side_and_is_checked() -> None:
    config = AugmentConfig(image_size=32, view_size=24)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    view_1, view_2 = BatchedTwoViews(config)(images)
    assert view_1.shape == view_2.shape == (3, 3, 24, 24)
    reference_1, reference_2 = ReferenceTwoViews(config)(images[0])
    assert reference_1.shape == reference_2.shape == (3, 24, 24)
    with pytest.raises(ValueError, match=r"augment\.view_size=1 "):
        BatchedTwoViews(AugmentConfig(image_size=32, view_size=1))
