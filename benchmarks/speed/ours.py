"""Our BYOL: :class:`byol.model.BYOL` + LARS + :func:`byol.train.step.training_step`.

Two precisions: ``fp32`` (NCHW, no autocast) and ``fast`` (channels_last weights and inputs,
bfloat16 autocast on CPU and CUDA). Two data pipelines:

* ``batched``: the split decoded once into a uint8 cache (:mod:`byol.data.cache`), batches
  gathered from it and augmented as whole tensors by :class:`byol.augment.BatchedTwoViews` on
  the training device (on CUDA the cache is moved to the GPU once);
* ``per-image``: :class:`byol.augment.ReferenceTwoViews` in DataLoader workers over
  :class:`byol.data.folder.ImageFolderDataset`, decoding every JPEG every epoch.

Augmentations: the paper's two views ([paper] Table 6, ``AugmentConfig`` defaults) at the
benchmark's image size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch

from benchmarks.speed.common import (
    Batch,
    BenchSpec,
    DataSource,
    Implementation,
    package_version,
    random_views,
)
from benchmarks.speed.data import endless, loader, uint8_batches
from benchmarks.speed.timing import autocast_forward
from byol.augment import BatchedTwoViews, ReferenceTwoViews
from byol.backbones import build_backbone
from byol.config import AugmentConfig, OptimConfig
from byol.data.cache import ImageCache, build_folder_cache
from byol.data.folder import ImageFolderDataset, scan_folder
from byol.model import BYOL
from byol.optim import build_optimizer
from byol.train.step import StepHooks, training_step


def cache_size(image_size: int) -> int:
    """Side of the cached images: the crop size for small images (CIFAR keeps its 32 px),
    ``ceil(S * 256 / 224)`` for larger crops (the usual ImageNet resize before cropping)."""
    return image_size if image_size <= 64 else math.ceil(image_size * 256 / 224)


class BatchedPipeline:
    """uint8 cache + :class:`BatchedTwoViews`; the cache is built (or mapped) once in
    :meth:`prepare`, outside every timed block, and its build time is reported separately."""

    def __init__(self, spec: BenchSpec, channels_last: bool, compiled: bool = False) -> None:
        self.spec = spec
        self.channels_last = channels_last
        self.augment = BatchedTwoViews(AugmentConfig(image_size=spec.image_size)).to(spec.device)
        self.apply_views: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = (
            torch.compile(self.augment, fullgraph=True) if compiled else self.augment
        )
        self.cache: ImageCache | None = None
        self.images: torch.Tensor | None = None

    def prepare(self, source: DataSource) -> str:
        if self.cache is not None:
            return ""
        start = time.perf_counter()
        self.cache = build_folder_cache(
            scan_folder(source.root),
            source.cache_dir,
            cache_size(self.spec.image_size),
            description=f"benchmark {source.root}",
            progress=False,
        )
        seconds = time.perf_counter() - start
        images = self.cache.images
        if self.spec.device.type == "cuda":
            images = images.to(self.spec.device)
        self.images = images
        how = "mapped existing cache" if self.cache.reused else "decoded and cached"
        return (
            f"uint8 cache: {how}, {len(self.cache)} images at {self.cache.size} px in "
            f"{seconds:.1f} s (one-off, outside the timed blocks)"
        )

    def stream(self, source: DataSource) -> Iterator[Batch]:
        self.prepare(source)
        if self.images is None:  # pragma: no cover - prepare always sets it
            raise RuntimeError("the uint8 cache was not prepared")
        batches = uint8_batches(
            self.images, self.spec.batch_size, self.spec.device, self.spec.seed + 2
        )
        for images in batches:
            view_1, view_2 = self.apply_views(images)
            if self.channels_last:
                view_1 = view_1.contiguous(memory_format=torch.channels_last)
                view_2 = view_2.contiguous(memory_format=torch.channels_last)
            yield view_1, view_2


def reference_stream(spec: BenchSpec, channels_last: bool, source: DataSource) -> Iterator[Batch]:
    """Per-image reference views decoded and augmented in ``spec.workers`` DataLoader workers."""
    dataset = ImageFolderDataset(
        source.root,
        transform=ReferenceTwoViews(AugmentConfig(image_size=spec.image_size)),
        validate="none",
    )
    return endless(loader(dataset, spec), spec, channels_last)


def build_ours(spec: BenchSpec, fast: bool, compiled: bool = False) -> Implementation:
    """Our model, LARS and train step; ``fast``: channels_last + bf16 autocast; ``compiled``:
    also ``torch.compile`` the model and the augmentation (``train.compile=true``), compiled
    during the warm-up steps and batches, outside the timed ones."""
    torch.manual_seed(spec.seed)
    backbone = build_backbone(spec.backbone, spec.cifar_stem)
    model = BYOL(
        backbone,
        projector_hidden_dim=spec.hidden_dim,
        projection_dim=spec.projection_dim,
        predictor_hidden_dim=spec.hidden_dim,
    ).to(spec.device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    optim_config = OptimConfig(batch_size=spec.batch_size)
    optimizer = build_optimizer(model.online, optim_config)
    learning_rate = optim_config.base_learning_rate * spec.batch_size / 256.0
    forward = torch.compile(model) if compiled else model
    hooks = StepHooks(forward=autocast_forward(forward, torch.bfloat16) if fast else forward)

    def step(batch: Batch) -> None:
        training_step(model, optimizer, batch, learning_rate, spec.tau, hooks)

    pipeline = BatchedPipeline(spec, channels_last=fast, compiled=compiled)
    precision = "bf16 autocast + channels_last" if fast else "fp32"
    if compiled:
        precision += " + torch.compile"
    return Implementation(
        key=("ours-compiled" if compiled else "ours-fast") if fast else "ours-fp32",
        label="byol (ours)",
        precision=precision,
        pipeline="uint8 cache + BatchedTwoViews on device" + (" (compiled)" if compiled else ""),
        package=package_version("byol"),
        synthetic=lambda: random_views(spec, 2, channels_last=fast),
        step=step,
        data_stream=pipeline.stream,
        prepare=pipeline.prepare,
    )


def build_ours_reference(spec: BenchSpec, fast_step: Implementation) -> Implementation:
    """The same step as ``fast_step`` fed by the per-image reference pipeline."""
    channels_last = fast_step.key == "ours-fast"
    return Implementation(
        key=f"{fast_step.key}-per-image",
        label="byol (ours)",
        precision=fast_step.precision,
        pipeline=f"ReferenceTwoViews per image, {spec.workers} DataLoader workers",
        package=fast_step.package,
        synthetic=fast_step.synthetic,
        step=fast_step.step,
        data_stream=lambda source: reference_stream(spec, channels_last, source),
        shares_step_with=fast_step.key,
    )
