"""The JPEG folder every pipeline reads, and DataLoader settings shared by per-image pipelines.

The default source is the CIFAR-10 JPEG archive (``cifar10-jpg.tar.gz``, 50,000 train images,
32x32) unpacked once with :func:`byol.data.cifar10.unpack_cifar10_jpg` into the cache folder
(``~/.cache/byol-bench`` by default); the archive itself is never written to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.speed.common import Batch, BenchSpec, DataSource, to_device

DEFAULT_CACHE_DIR = Path("~/.cache/byol-bench").expanduser()


def cifar10_source(cache_dir: Path = DEFAULT_CACHE_DIR) -> DataSource:
    """The unpacked CIFAR-10 train split as a :class:`DataSource` (unpacks on first use)."""
    from byol.data.cifar10 import cifar10_jpg_split

    return DataSource(root=cifar10_jpg_split("train", cache_dir), cache_dir=cache_dir)


def folder_source(root: str | Path, cache_dir: Path = DEFAULT_CACHE_DIR) -> DataSource:
    """A user's ImageFolder (``root/<class>/<image>``) as a :class:`DataSource`."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(f"--data-root {str(root)!r} is not a folder; pass an ImageFolder root")
    return DataSource(root=path, cache_dir=cache_dir)


def loader(dataset: Dataset[Any], spec: BenchSpec) -> DataLoader[Any]:
    """Shuffled, batch ``spec.batch_size``, ``spec.workers`` workers, last partial batch dropped.

    ``persistent_workers`` is off on purpose: each timed block starts its own workers, so a
    queue filled while another implementation was being timed never feeds this one for free.
    """
    if len(dataset) < spec.batch_size:  # type: ignore[arg-type]
        raise ValueError(
            f"the image folder holds {len(dataset)} images, fewer than one batch of "  # type: ignore[arg-type]
            f"{spec.batch_size}; lower --batch-size or point --data-root at a larger folder"
        )
    return DataLoader(
        dataset,
        batch_size=spec.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=spec.workers,
        pin_memory=spec.device.type == "cuda",
        persistent_workers=False,
    )


def endless(data: DataLoader[Any], spec: BenchSpec, channels_last: bool = False) -> Iterator[Batch]:
    """Batches of a DataLoader on the spec's device, epoch after epoch, labels dropped.

    A sample is ``(views, label)`` with ``views`` a tensor or a pair of tensors; each batch
    comes out as a tuple of tensors (one per view).
    """
    while True:
        for sample, _label in data:
            views = tuple(sample) if isinstance(sample, (list, tuple)) else (sample,)
            yield to_device(views, spec.device, channels_last)


def uint8_batches(
    images: torch.Tensor, batch_size: int, device: torch.device, seed: int
) -> Iterator[torch.Tensor]:
    """Shuffled uint8 batches (B, 3, S, S) gathered from a cache tensor, epoch after epoch.

    On CUDA the gather runs on the device (``images`` should already live there); the index
    permutation is drawn where the images are, so no host-device synchronisation is needed.
    """
    generator = torch.Generator(device=images.device).manual_seed(seed)
    count = int(images.shape[0])
    if count < batch_size:
        raise ValueError(
            f"the cache holds {count} images, fewer than one batch of {batch_size}; lower "
            f"--batch-size or point --data-root at a larger folder"
        )
    while True:
        order = torch.randperm(count, generator=generator, device=images.device)
        for start in range(0, count - batch_size + 1, batch_size):
            batch = images[order[start : start + batch_size]]
            yield batch.to(device, non_blocking=True)
