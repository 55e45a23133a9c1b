"""Training data for the engine: batches of two augmented views on the training device.

Two paths, chosen by ``augment.backend``:

* ``batched`` (the fast path, ``auto`` when the dataset fits the uint8 cache): images decoded
  once into a uint8 (N, 3, S, S) cache; each step gathers a batch and augments it on the
  training device with :class:`~byol.augment.BatchedTwoViews`, no per-image Python work.
* ``per_image``: a DataLoader whose workers decode and augment each image with the torchvision
  reference pipeline, for data that does not fit in memory.

Both are pure functions of (seed, epoch, batch index): the augmentation randomness of batch b
of epoch e is seeded from (seed, e, b) for the batched path and (seed, e, image index) for the
per-image path, never from the process rank. A resumed run therefore sees exactly the views
the uninterrupted run would have seen, without saving generator states, and the views of an
image do not depend on how many processes share the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

import torch
from lightning_fabric import Fabric
from torch import Tensor

from byol.augment import BatchedTwoViews, ReferenceTwoViews, TwoViewParams
from byol.config import Config
from byol.data.registry import ImageSource, load_images
from byol.data.sampler import EpochSampler
from byol.data.shards import ShardSet, ShardStream, is_shard_folder, read_shard_set

# Cap on the uint8 cache the ``auto`` backend keeps in memory (ImageNet at 256 px is ~250 GB).
AUTO_CACHE_LIMIT_BYTES = 8 * 1024**3


class ViewBatch(NamedTuple):
    """One step's data: two views (B, 3, S, S) and the images' labels (B,) int64, -1 where an
    image has none; ``labels`` is None where the source carries no labels (tar shards)."""

    view_1: Tensor
    view_2: Tensor
    labels: Tensor | None


class ViewSource(Protocol):
    """What the engine needs from its data."""

    @property
    def num_images(self) -> int: ...

    @property
    def batch_size(self) -> int:
        """Images per step on this process."""
        ...

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of each image file left out as unreadable."""
        ...

    @property
    def num_classes(self) -> int:
        """Classes of the labelled images, 0 when the data has no labels."""
        ...

    def epoch_batches(self, epoch: int, start_batch: int = 0) -> Iterator[ViewBatch]:
        """This process's batches of ``epoch``, from batch ``start_batch`` on."""
        ...


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """A distinct 63-bit seed per (run seed, epoch, batch) (or image index, per image)."""
    mixed = (seed * 1_000_003 + epoch) * 1_000_033 + batch
    return (mixed * 4_099) % (2**63 - 1)


class _SamplerBatches:
    """Batch size and epoch length of a view source that draws its batches from a sampler."""

    sampler: EpochSampler

    @property
    def batch_size(self) -> int:
        return self.sampler.local_batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch


@dataclass
class CachedViewSource(_SamplerBatches):
    """uint8 cache + epoch sampler + batched augmentation on ``device``."""

    images: Tensor  # uint8 (N, 3, S, S), on the device when it fits there, else pinned CPU
    labels: Tensor  # int64 (N,), -1 where unlabelled, on the training device
    num_classes: int
    sampler: EpochSampler
    augment: BatchedTwoViews
    device: torch.device
    seed: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # ``augment.apply_params`` itself, or its ``torch.compile``d version (``train.compile``).
    apply_views: Callable[[Tensor, TwoViewParams], tuple[Tensor, Tensor]] | None = None

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    def epoch_batches(self, epoch: int, start_batch: int = 0) -> Iterator[ViewBatch]:
        generator = torch.Generator(device=self.device)
        apply_views = self.apply_views or self.augment.apply_params
        height, width = self.images.shape[-2:]
        # This rank's rows of the global batch (EpochSampler's layout: rank r, slice r).
        first = self.sampler.rank * self.batch_size
        rows = (first, first + self.batch_size)
        for offset, indices in enumerate(self.sampler.batches(epoch, start_batch)):
            batch = self.images[indices.to(self.images.device)]
            batch = batch.to(self.device, non_blocking=True)
            # Parameters for the whole global batch from a rank-free seed, then this rank's
            # rows: the views of an image do not depend on the number of processes. Drawing
            # B parameter rows is one small torch.rand.
            generator.manual_seed(batch_seed(self.seed, epoch, start_batch + offset))
            params = self.augment.sample_params(
                self.sampler.global_batch_size, height, width, self.device, generator
            )
            view_1, view_2 = apply_views(batch, params.slice(*rows))
            yield ViewBatch(view_1, view_2, self.labels[indices.to(self.labels.device)])


class _SeededTwoViews(torch.utils.data.Dataset[tuple[Tensor, Tensor, int]]):
    """Per-image views whose randomness is a function of (seed, epoch, index)."""

    def __init__(
        self,
        dataset: torch.utils.data.Dataset[tuple[Any, int]],
        transform: ReferenceTwoViews,
        seed: int,
    ) -> None:
        self.dataset, self.transform, self.seed, self.epoch = dataset, transform, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        image, label = self.dataset[index]
        # torchvision transforms draw from the global generator of the worker process.
        torch.manual_seed(batch_seed(self.seed, self.epoch, index))
        view_1, view_2 = self.transform(image)
        return view_1, view_2, int(label)


@dataclass
class LoaderViewSource(_SamplerBatches):
    """DataLoader with workers and pinned memory, for datasets that do not fit in memory."""

    dataset: _SeededTwoViews
    sampler: EpochSampler
    device: torch.device
    num_workers: int
    num_classes: int = 0

    @property
    def num_images(self) -> int:
        return len(self.dataset)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Files found unreadable when the dataset was built (a file that fails later, in a
        worker, is replaced by the next image and reported there)."""
        return list(getattr(self.dataset.dataset, "skipped", []))

    def epoch_batches(self, epoch: int, start_batch: int = 0) -> Iterator[ViewBatch]:
        self.sampler.set_epoch(epoch, start_batch)
        self.dataset.epoch = epoch
        yield from _worker_views(
            self.dataset, self.batch_size, self.num_workers, self.device, sampler=self.sampler
        )


@dataclass
class ShardViewSource:
    """Views streamed from tar shards (:class:`~byol.data.shards.ShardStream`), for data that
    does not fit on one disk; workers decode and augment as in :class:`LoaderViewSource`."""

    stream: ShardStream
    device: torch.device
    num_workers: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    num_classes: int = 0  # the stream carries no labels to the engine

    @property
    def num_images(self) -> int:
        return self.stream.shards.num_images

    @property
    def batch_size(self) -> int:
        return self.stream.local_batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.stream.batches_per_epoch

    def epoch_batches(self, epoch: int, start_batch: int = 0) -> Iterator[ViewBatch]:
        self.stream.set_epoch(epoch, start_batch)
        yield from _worker_views(self.stream, self.batch_size, self.num_workers, self.device)


def _worker_views(
    dataset: torch.utils.data.Dataset[Any],
    batch_size: int,
    num_workers: int,
    device: torch.device,
    sampler: EpochSampler | None = None,
) -> Iterator[ViewBatch]:
    """Batches of views made by DataLoader workers, moved to ``device`` (pinned on CUDA);
    items are ``(view_1, view_2)`` or ``(view_1, view_2, label)``."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    for view_1, view_2, *labels in loader:
        yield ViewBatch(
            view_1.to(device, non_blocking=True),
            view_2.to(device, non_blocking=True),
            labels[0].to(device, torch.int64, non_blocking=True) if labels else None,
        )


def training_source(config: Config, progress: bool = True) -> ImageSource | ShardSet:
    """The training split named by ``config.data``: images, or a folder of tar shards."""
    if is_shard_folder(config.data.source):
        if config.data.max_images is not None:
            raise ValueError(
                f"data.max_images={config.data.max_images} does not apply to the shard folder "
                f"{config.data.source}; write a subset with byol shard DATA --max-images N"
            )
        return read_shard_set(config.data.source)
    return load_images(
        config.data.source,
        "train",
        config.data.cache_dir,
        cache_size=config.data.cache_size,
        image_size=config.augment.image_size,
        max_images=config.data.max_images,
        num_workers=config.data.num_workers,
        progress=progress,
    )


def build_view_source(config: Config, fabric: Fabric, source: ImageSource | ShardSet) -> ViewSource:
    """The engine's data for this process, on ``fabric.device``, from the resolved ``source``."""
    if isinstance(source, ShardSet):
        return build_shard_view_source(config, fabric, source)
    backend = config.augment.backend
    if backend == "auto":
        backend = "batched" if source.cache_bytes <= AUTO_CACHE_LIMIT_BYTES else "per_image"
    global_batch = config.optim.batch_size
    if backend == "batched":
        cache = source.cache()
        check_batch_size(global_batch, len(cache), len(cache.skipped))
        sampler = EpochSampler(
            len(cache),
            global_batch,
            seed=config.train.seed,
            rank=fabric.global_rank,
            world_size=fabric.world_size,
        )
        images = cache.images
        if fabric.device.type == "cuda":
            images = images.to(fabric.device)  # a CIFAR-sized cache is 150 MB of GPU memory
        augment = BatchedTwoViews(config.augment).to(fabric.device)
        apply_views = augment.apply_params
        if config.train.compile:
            # At 32 px the eager pipeline is bound by kernel launches on a GPU (about 450 per
            # batch); compiled, its elementwise chain fuses into a few kernels. Every batch has
            # the same shape (the sampler drops the last partial one), so it compiles once.
            apply_views = torch.compile(augment.apply_params, fullgraph=True)
        return CachedViewSource(
            images,
            cache.labels.to(fabric.device),
            len(cache.classes),
            sampler,
            augment,
            fabric.device,
            config.train.seed,
            list(cache.skipped),
            apply_views=apply_views,
        )
    dataset = _SeededTwoViews(
        source.dataset(), ReferenceTwoViews(config.augment), config.train.seed
    )
    check_batch_size(global_batch, len(dataset), len(getattr(dataset.dataset, "skipped", ())))
    sampler = EpochSampler(
        len(dataset),
        global_batch,
        seed=config.train.seed,
        rank=fabric.global_rank,
        world_size=fabric.world_size,
    )
    return LoaderViewSource(
        dataset, sampler, fabric.device, config.data.num_workers, num_classes=len(source.classes)
    )


def build_shard_view_source(config: Config, fabric: Fabric, shards: ShardSet) -> ShardViewSource:
    """Stream ``shards``: this rank's share, per-image views seeded by (seed, epoch, index)."""
    if config.augment.backend == "batched":
        raise ValueError(
            "augment.backend=batched needs the images in memory, but shards are streamed; "
            "use augment.backend=auto or per_image"
        )
    check_batch_size(config.optim.batch_size, shards.num_images)
    if config.optim.batch_size % fabric.world_size:
        raise ValueError(
            f"optim.batch_size={config.optim.batch_size} is not divisible by the "
            f"{fabric.world_size} processes; pick a multiple of the number of processes"
        )
    stream = ShardStream(
        shards,
        ReferenceTwoViews(config.augment),
        partial(batch_seed, config.train.seed),
        local_batch_size=config.optim.batch_size // fabric.world_size,
        rank=fabric.global_rank,
        world_size=fabric.world_size,
        num_workers=config.data.num_workers,
        seed=config.train.seed,
    )
    return ShardViewSource(stream, fabric.device, config.data.num_workers)


def check_batch_size(batch_size: int, num_images: int, num_skipped: int = 0) -> None:
    """Raise ``ValueError`` naming both numbers when no full batch of ``batch_size`` exists."""
    if batch_size > num_images:
        unreadable = f" ({num_skipped} unreadable files skipped)" if num_skipped else ""
        raise ValueError(
            f"optim.batch_size={batch_size} is larger than the {num_images} training "
            f"images{unreadable}, so no full batch exists; lower optim.batch_size to at most "
            f"{num_images} or add images"
        )
