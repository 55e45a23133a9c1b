"""What every implementation adapter shares: the benchmark spec and the adapter record.

An adapter turns one library's documented BYOL recipe into three callables the timers use:

* ``step(batch)``: one full optimisation step (forward both views, loss, backward, optimiser
  step, target EMA) on a batch prepared by ``synthetic()`` (pre-augmented random tensors);
* ``data_stream(source)``: an iterator of batches ready for the step, read from a JPEG folder
  and augmented with the library's own pipeline (decode + two views);
* ``e2e_stream(source)`` / ``e2e_step(batch)``: the same for the end-to-end run, where a
  library augments inside its forward pass (byol-pytorch) and so consumes raw images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from byol.backbones import build_backbone

Batch = tuple[Tensor, ...]
Stream = Callable[["DataSource"], Iterator[Batch]]


@dataclass(frozen=True)
class BenchSpec:
    """One benchmark configuration, identical for every implementation.

    ``backbone``: a :func:`byol.backbones.build_backbone` name; ``cifar_stem`` swaps in the
    3x3 stride-1 stem without max-pool. ``hidden_dim``/``projection_dim``: 4096/256, the
    projector and predictor sizes of [official] ``configs/byol.py:40-42``.
    ``workers``: DataLoader worker processes of per-image pipelines.
    """

    device: torch.device
    backbone: str = "resnet18"
    cifar_stem: bool = True
    image_size: int = 32
    batch_size: int = 256
    hidden_dim: int = 4096
    projection_dim: int = 256
    workers: int = 2
    tau: float = 0.996
    seed: int = 0

    @property
    def describe(self) -> str:
        stem = " (CIFAR stem)" if self.cifar_stem else ""
        return (
            f"{self.backbone}{stem}, {self.image_size} px, batch {self.batch_size}, heads "
            f"{self.hidden_dim}/{self.projection_dim}, {self.device.type}"
        )


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: an ImageFolder root of JPEGs and a cache folder.

    ``cache_dir``: where our uint8 cache is written (built once, reused by later runs).
    """

    root: Path
    cache_dir: Path


@dataclass
class Implementation:
    """One row of the results table (see the module docstring for the callables).

    ``prepare(source)``: one-off work before any timed block (building a cache); returns a note
    for the report. ``shares_step_with``: key of the row whose train step this row reuses, so
    its step is timed once.
    """

    key: str
    label: str
    precision: str
    pipeline: str
    package: str
    synthetic: Callable[[], Batch]
    step: Callable[[Batch], None]
    data_stream: Stream | None = None
    e2e_stream: Stream | None = None
    e2e_step: Callable[[Batch], None] | None = None
    prepare: Callable[[DataSource], str] | None = None
    shares_step_with: str | None = None
    is_peer: bool = False
    notes: list[str] = field(default_factory=list)

    def end_to_end(self) -> tuple[Stream, Callable[[Batch], None]] | None:
        """The stream and step of the end-to-end run, or None without a data pipeline."""
        stream = self.e2e_stream or self.data_stream
        if stream is None:
            return None
        return stream, self.e2e_step or self.step


def encoder(spec: BenchSpec) -> nn.Module:
    """A fresh backbone (same seed, so every implementation starts from the same weights).

    (B, 3, H, W) -> (B, D); for torchvision ResNets ``fc`` is ``Identity``, so its ``avgpool``
    output is the feature.
    """
    torch.manual_seed(spec.seed)
    return build_backbone(spec.backbone, spec.cifar_stem).module


def feature_dim(spec: BenchSpec) -> int:
    """D of :func:`encoder`'s output, as the backbone declares it."""
    return build_backbone(spec.backbone, spec.cifar_stem).feature_dim


def random_views(spec: BenchSpec, count: int = 2, channels_last: bool = False) -> Batch:
    """``count`` normalised-looking float32 views (B, 3, S, S) on the spec's device."""
    generator = torch.Generator().manual_seed(spec.seed + 1)
    shape = (spec.batch_size, 3, spec.image_size, spec.image_size)
    views = []
    for _ in range(count):
        view = torch.randn(shape, generator=generator).to(spec.device)
        if channels_last:
            view = view.contiguous(memory_format=torch.channels_last)
        views.append(view)
    return tuple(views)


def to_device(tensors: Batch, device: torch.device, channels_last: bool = False) -> Batch:
    """Move a batch to ``device`` (asynchronously from pinned memory on CUDA)."""
    moved = []
    for tensor in tensors:
        tensor = tensor.to(device, non_blocking=True)
        if channels_last and tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        moved.append(tensor)
    return tuple(moved)


def package_version(distribution: str) -> str:
    """``"name version"`` of a distribution, from its metadata or its module's ``__version__``
    (a source checkout on ``PYTHONPATH``), else ``"name (not installed)"``."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{distribution} {version(distribution)}"
    except PackageNotFoundError:
        pass
    try:
        module = importlib.import_module(distribution.replace("-", "_"))
    except ImportError:
        return f"{distribution} (not installed)"
    return f"{distribution} {getattr(module, '__version__', 'unknown')}"
