"""BYOL augmentation of whole uint8 batches on the training device.

Every random parameter is drawn per image, as a batched tensor, on the images' device: a
batch of 256 gets 256 crop boxes, flips, jitter factors, jitter orders, blur sigmas, ...
(torchvision transforms applied to a batched tensor reuse one draw for the whole batch,
pytorch/vision #2929, #8484). The operations, their order and their defaults are those of
[official] ``utils/augmentations.py:27-66`` and [paper] Appendix B, Table 6; each operation
computes what torchvision's functional op computes for one image (see
:mod:`byol.augment.color` and :mod:`byol.augment.resample`), so this pipeline and
:class:`byol.augment.reference.ReferenceView` sample the same distribution.

Sampling and applying are separate steps: :meth:`BatchedView.sample_params` returns a
:class:`ViewParams` of tensors and :meth:`BatchedView.apply_params` applies it (not ``apply``,
which would shadow ``torch.nn.Module.apply``); this keeps the statistics of every operation
testable.

Masked operations: an operation that only some images receive (blur with p = 0.1, say) runs
on the selected images only when the batch is on the CPU, where finding them is free; on an
accelerator it runs on the whole batch and ``torch.where`` keeps the selected results, so the
host never waits for the device (no ``nonzero``/``.item()`` synchronisation). Under
``torch.compile`` it always takes the ``torch.where`` form, whose shapes do not depend on the
data, so ``torch.compile(augment.apply_params, fullgraph=True)`` compiles without graph breaks.

Differences from the reference, by design: the crop result stays float32 (the reference
rounds it to uint8, a difference of at most 0.5/255), and the two views of a batch are
applied in one pass over ``2B`` images when their blur kernels and solarize thresholds agree
(:attr:`BatchedTwoViews.fuse_views`), which halves the kernel launches on a GPU.
Crop + resize is two batched matrix products, antialiased; :mod:`byol.augment.resample`
says why that beats ``grid_sample`` and ``roi_align`` here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

from byol.augment import color
from byol.augment.common import (
    blur_kernel_size,
    training_view_size,
    validate_augment_config,
    validate_normalization,
    validate_view_config,
)
from byol.augment.resample import resized_crop
from byol.config import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, ViewConfig

# Column of each jitter operation in ``ViewParams.jitter_order``; torchvision's ColorJitter
# numbers them the same way.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3

# RandomResizedCrop tries 10 boxes before falling back to a centre crop (torchvision).
_CROP_ATTEMPTS = 10


@dataclass
class ViewParams:
    """Random parameters of one view for a batch of ``B`` images; every field has length B.

    Crop boxes are integer pixels of the input ``(H, W)``. Factors of operations an image does
    not receive are still drawn (the random stream does not depend on the outcomes) but unused.
    """

    crop_top: torch.Tensor  # int64 (B,)
    crop_left: torch.Tensor  # int64 (B,)
    crop_height: torch.Tensor  # int64 (B,)
    crop_width: torch.Tensor  # int64 (B,)
    flip: torch.Tensor  # bool (B,)
    color_jitter: torch.Tensor  # bool (B,)
    brightness: torch.Tensor  # float32 (B,), multiplicative factor
    contrast: torch.Tensor  # float32 (B,)
    saturation: torch.Tensor  # float32 (B,)
    hue: torch.Tensor  # float32 (B,), in turns
    jitter_order: torch.Tensor  # int64 (B, 4), a permutation of BRIGHTNESS..HUE per image
    grayscale: torch.Tensor  # bool (B,)
    blur: torch.Tensor  # bool (B,)
    blur_sigma: torch.Tensor  # float32 (B,), pixels
    solarize: torch.Tensor  # bool (B,)

    @property
    def batch_size(self) -> int:
        return int(self.flip.shape[0])

    def to(self, device: torch.device | str) -> ViewParams:
        """A copy with every tensor on ``device``."""
        return ViewParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def slice(self, start: int, stop: int) -> ViewParams:
        """The parameters of images ``start:stop`` (views, no copy)."""
        return ViewParams(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @staticmethod
    def cat(params: Sequence[ViewParams]) -> ViewParams:
        """Concatenate the parameters of several batches along the batch dimension."""
        return ViewParams(
            **{f.name: torch.cat([getattr(p, f.name) for p in params]) for f in fields(params[0])}
        )


@dataclass
class TwoViewParams:
    """Parameters of both views of one batch."""

    view1: ViewParams
    view2: ViewParams

    def to(self, device: torch.device | str) -> TwoViewParams:
        """A copy with every tensor on ``device``."""
        return TwoViewParams(self.view1.to(device), self.view2.to(device))

    def slice(self, start: int, stop: int) -> TwoViewParams:
        """The parameters of images ``start:stop`` of the batch, e.g. one process's share."""
        return TwoViewParams(self.view1.slice(start, stop), self.view2.slice(start, stop))


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is not None and generator.device.type != device.type:
        raise ValueError(
            f"the generator is on {generator.device} but the images are on {device}; "
            f"create it with torch.Generator(device={str(device)!r})"
        )


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}; "
            "stack RGB images along a new first dimension"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(
            f"expected uint8 images (or floats in [0, 1]), got {images.dtype}; "
            "convert with images.to(torch.uint8)"
        )
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images have an empty side: {tuple(images.shape)}")


def _uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * u


def _apply_masked(
    images: torch.Tensor,
    mask: torch.Tensor,
    operation: Callable[..., torch.Tensor],
    factors: tuple[torch.Tensor, ...],
    subset: bool,
) -> torch.Tensor:
    """``operation(images, *factors)`` where ``mask`` ``(B,)`` holds, ``images`` elsewhere."""
    if subset:
        index = mask.nonzero().squeeze(1)
        if index.numel() == 0:
            return images
        if index.numel() == images.shape[0]:
            return operation(images, *factors)
        selected = operation(images[index], *(f[index] for f in factors))
        return images.index_copy_(0, index, selected)  # images is the pipeline's own buffer
    return torch.where(mask.reshape(-1, 1, 1, 1), operation(images, *factors), images)


def _blend_step(
    images: torch.Tensor, factors: torch.Tensor, operation: torch.Tensor
) -> torch.Tensor:
    """Brightness, contrast or saturation, chosen per image by ``operation`` ``(B,)``.

    All three are ``clamp(f x + (1 - f) ref)`` with ``ref`` = 0, the mean luma or the luma
    image (torchvision's definitions), so one blend serves a batch that mixes them:
    ``f x + a * luma + c * mean(luma)`` with per-image ``a`` and ``c``.

    Args:
        images: ``(B, 3, H, W)`` in [0, 1].
        factors: ``(B, 3)`` brightness, contrast and saturation factors.
        operation: ``(B,)`` values in ``BRIGHTNESS, CONTRAST, SATURATION``; ``HUE`` leaves the
            image exactly unchanged (factor 1, reference 0).
    """
    is_blend = operation != HUE
    factor = factors.gather(1, operation.clamp(max=SATURATION).unsqueeze(1)).squeeze(1)
    factor = torch.where(is_blend, factor, torch.ones_like(factor))
    luma_weight = torch.where(operation == SATURATION, 1.0 - factor, 0.0).reshape(-1, 1, 1, 1)
    mean_weight = torch.where(operation == CONTRAST, 1.0 - factor, 0.0).reshape(-1, 1, 1, 1)
    gray = color.rgb_to_grayscale(images)
    mean_gray = gray.mean(dim=(-2, -1), keepdim=True)
    reference = gray.mul_(luma_weight).add_(mean_gray.mul_(mean_weight))
    blended = torch.addcmul(reference, images, factor.reshape(-1, 1, 1, 1))
    return blended.clamp_(0.0, 1.0)


class BatchedView(torch.nn.Module):
    """One BYOL view of a batch: uint8 ``(B, 3, H, W)`` -> float32 ``(B, 3, S, S)`` normalised.

    Args:
        view: augmentation parameters ([official] ``utils/augmentations.py:27-66``).
        image_size: side ``S`` of the square crops.
        mean, std: per-channel normalisation applied last.
        subset_ops: run masked operations on the selected images only (True), or on the whole
            batch with ``torch.where`` (False); None picks True on CPU, False on other devices
            and under ``torch.compile``.
    """

    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(
        self,
        view: ViewConfig,
        image_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        subset_ops: bool | None = None,
    ) -> None:
        super().__init__()
        validate_view_config(view)
        mean3, std3 = validate_normalization(image_size, mean, std)
        self.view = view
        self.image_size = image_size
        self.subset_ops = subset_ops
        self.blur_kernel_size = blur_kernel_size(image_size, view.blur_kernel_fraction)
        self.mean = mean3
        self.std = std3
        self.register_buffer("_mean", torch.tensor(mean3).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(std3).reshape(1, 3, 1, 1), persistent=False)

    def sample_params(
        self,
        batch_size: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> ViewParams:
        """Draw the parameters of this view for ``batch_size`` images of ``height x width``.

        One ``torch.rand`` call on ``device`` (with ``generator`` if given) feeds all draws.
        Crop boxes follow torchvision's ``RandomResizedCrop``: up to 10 tries of area fraction
        ``U(scale)`` and log-uniform aspect ratio, the first that fits wins, else a centre crop
        with the ratio clamped to the allowed range.
        """
        device = torch.device(device)
        _check_generator(generator, device)
        view = self.view
        n = _CROP_ATTEMPTS
        u = torch.rand(batch_size, 2 * n + 16, generator=generator, device=device)
        u_scale, u_ratio, u = u[:, :n], u[:, n : 2 * n], u[:, 2 * n :]

        area = float(height * width)
        target_area = area * _uniform(u_scale, view.crop_scale_min, view.crop_scale_max)
        log_ratio = _uniform(u_ratio, math.log(view.crop_ratio_min), math.log(view.crop_ratio_max))
        aspect = torch.exp(log_ratio)
        # float64 so that rounding matches torchvision's Python-float arithmetic.
        crop_w = torch.round(torch.sqrt(target_area.double() * aspect.double()))
        crop_h = torch.round(torch.sqrt(target_area.double() / aspect.double()))
        fits = (crop_w >= 1) & (crop_w <= width) & (crop_h >= 1) & (crop_h <= height)
        first = torch.argmax(fits.to(torch.uint8), dim=1, keepdim=True)  # first True (or 0)
        any_fit = fits.any(dim=1)
        crop_w = crop_w.gather(1, first).squeeze(1).long()
        crop_h = crop_h.gather(1, first).squeeze(1).long()
        # Fallback: the whole image, or its centre with the ratio clamped to the range.
        in_ratio = width / height
        if in_ratio < view.crop_ratio_min:
            fallback_w, fallback_h = width, round(width / view.crop_ratio_min)
        elif in_ratio > view.crop_ratio_max:
            fallback_w, fallback_h = round(height * view.crop_ratio_max), height
        else:
            fallback_w, fallback_h = width, height
        crop_w = torch.where(any_fit, crop_w, torch.full_like(crop_w, fallback_w))
        crop_h = torch.where(any_fit, crop_h, torch.full_like(crop_h, fallback_h))
        top = torch.floor(u[:, 0] * (height - crop_h + 1)).long().clamp_(max=height - crop_h)
        left = torch.floor(u[:, 1] * (width - crop_w + 1)).long().clamp_(max=width - crop_w)
        top = torch.where(any_fit, top, (height - crop_h) // 2)
        left = torch.where(any_fit, left, (width - crop_w) // 2)

        def factor(column: int, strength: float) -> torch.Tensor:
            return _uniform(u[:, column], max(0.0, 1.0 - strength), 1.0 + strength)

        return ViewParams(
            crop_top=top,
            crop_left=left,
            crop_height=crop_h,
            crop_width=crop_w,
            flip=u[:, 2] < view.flip_prob,
            color_jitter=u[:, 3] < view.color_jitter_prob,
            brightness=factor(4, view.brightness),
            contrast=factor(5, view.contrast),
            saturation=factor(6, view.saturation),
            hue=_uniform(u[:, 7], -view.hue, view.hue),
            # argsort of i.i.d. uniforms is a uniformly random permutation per image.
            jitter_order=torch.argsort(u[:, 8:12], dim=1),
            grayscale=u[:, 12] < view.grayscale_prob,
            blur=u[:, 13] < view.blur_prob,
            blur_sigma=_uniform(u[:, 14], view.blur_sigma_min, view.blur_sigma_max),
            solarize=u[:, 15] < view.solarize_prob,
        )

    def apply_params(self, images: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Apply ``params`` to ``images``.

        Args:
            images: uint8 ``(B, 3, H, W)`` (or float in [0, 1]) on any device.
            params: from :meth:`sample_params` for this batch size and image size.

        Returns:
            float32 ``(B, 3, S, S)`` on the images' device, normalised with ``mean``/``std``.
        """
        _check_images(images)
        if params.batch_size != images.shape[0]:
            raise ValueError(
                f"params are for {params.batch_size} images but the batch has {images.shape[0]}"
            )
        subset = self.subset_ops
        if subset is None:
            subset = images.device.type == "cpu" and not torch.compiler.is_compiling()
        value_scale = 1.0 / 255.0 if images.dtype == torch.uint8 else 1.0
        x = resized_crop(
            images,
            params.crop_top,
            params.crop_left,
            params.crop_height,
            params.crop_width,
            self.image_size,
            flip=params.flip,
            value_scale=value_scale,
        ).clamp_(0.0, 1.0)  # the reference crops uint8, which clamps bicubic overshoot
        x = self._color_jitter(x, params, subset)
        x = _apply_masked(x, params.grayscale, color.grayscale, (), subset)
        kernel_size = self.blur_kernel_size

        def blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return color.gaussian_blur(images, sigma, kernel_size)

        x = _apply_masked(x, params.blur, blur, (params.blur_sigma,), subset)
        threshold = self.view.solarize_threshold

        def solarize(images: torch.Tensor) -> torch.Tensor:
            return color.solarize(images, threshold)

        x = _apply_masked(x, params.solarize, solarize, (), subset)
        mean = self._mean.to(x.device)
        std = self._std.to(x.device)
        return x.sub_(mean).div_(std)

    def _color_jitter(self, x: torch.Tensor, params: ViewParams, subset: bool) -> torch.Tensor:
        """Brightness, contrast, saturation and hue in each image's own random order.

        Every order is "up to three blends, hue, up to three blends", where brightness,
        contrast and saturation are all ``blend(x, ref, f)`` (see :func:`_blend_step`). So we
        run three blend steps (step j applies each image's j-th operation if it comes before
        its hue), one hue step, and three more blend steps: hue, the costly operation, runs
        once per image rather than at each of the four positions.
        """
        jittered = params.color_jitter
        order = params.jitter_order
        factors = torch.stack([params.brightness, params.contrast, params.saturation], dim=1)
        hue_position = (order == HUE).long().argmax(dim=1)  # (B,)

        def blend(x: torch.Tensor, operation: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
            if subset:
                return _apply_masked(x, active, _blend_step, (factors, operation), subset=True)
            # HUE is an exact no-op in _blend_step: no torch.where pass needed.
            return _blend_step(x, factors, torch.where(active, operation, HUE))

        for step in range(3):
            x = blend(x, order[:, step], jittered & (step < hue_position))
        x = _apply_masked(x, jittered, color.adjust_hue, (params.hue,), subset)
        for step in range(3):
            position = hue_position + 1 + step
            operation = order.gather(1, position.clamp(max=3).unsqueeze(1)).squeeze(1)
            x = blend(x, operation, jittered & (position <= 3))
        return x

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Sample parameters on the images' device and apply them: ``(B, 3, S, S)`` float32."""
        _check_images(images)
        batch, _, height, width = images.shape
        params = self.sample_params(batch, height, width, images.device, generator)
        return self.apply_params(images, params)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, view={self.view}"


class BatchedTwoViews(torch.nn.Module):
    """The two asymmetric BYOL views of a uint8 batch, augmented on its device.

    View 1 always blurs and never solarizes, view 2 blurs with probability 0.1 and solarizes
    with probability 0.2 under the default config ([paper] Table 6).

    Args:
        config: the augmentation config (``image_size``, ``view1``, ``view2``, ``mean``, ``std``).
        subset_ops: see :class:`BatchedView`.

    Example::

        augment = BatchedTwoViews(AugmentConfig(image_size=32)).to("cuda")
        view1, view2 = augment(uint8_batch.cuda(non_blocking=True))
    """

    def __init__(self, config: AugmentConfig, subset_ops: bool | None = None) -> None:
        super().__init__()
        validate_augment_config(config)
        self.config = config
        self.view1 = BatchedView(
            config.view1, training_view_size(config), config.mean, config.std, subset_ops
        )
        self.view2 = BatchedView(
            config.view2, training_view_size(config), config.mean, config.std, subset_ops
        )
        # Both views differ only in their sampled parameters (probabilities are drawn, not
        # applied), so unless blur kernels or solarize thresholds differ, one pass over a
        # batch of 2B images applies both: half the kernel launches on a GPU.
        self.fuse_views = (
            self.view1.blur_kernel_size == self.view2.blur_kernel_size
            and config.view1.solarize_threshold == config.view2.solarize_threshold
        )

    def sample_params(
        self,
        batch_size: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> TwoViewParams:
        """Independent parameters for both views (view 1 drawn first)."""
        return TwoViewParams(
            view1=self.view1.sample_params(batch_size, height, width, device, generator),
            view2=self.view2.sample_params(batch_size, height, width, device, generator),
        )

    def apply_params(
        self, images: torch.Tensor, params: TwoViewParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views of ``images`` ``(B, 3, H, W)``: two float32 ``(B, 3, S, S)`` tensors."""
        if self.fuse_views:
            both = ViewParams.cat([params.view1, params.view2])
            view1, view2 = self.view1.apply_params(images.repeat(2, 1, 1, 1), both).chunk(2)
            return view1, view2
        return (
            self.view1.apply_params(images, params.view1),
            self.view2.apply_params(images, params.view2),
        )

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment ``images`` uint8 ``(B, 3, H, W)`` into two normalised float32 views.

        Args:
            images: uint8 ``(B, 3, H, W)`` on any device (floats in [0, 1] are accepted too).
            generator: a ``torch.Generator`` on the images' device for reproducible draws;
                None uses the device's default generator.

        Returns:
            ``(view1, view2)``, each float32 ``(B, 3, S, S)`` on the images' device.
        """
        _check_images(images)
        batch, _, height, width = images.shape
        params = self.sample_params(batch, height, width, images.device, generator)
        return self.apply_params(images, params)
