"""One entry point from ``DataConfig.source`` to images: :func:`load_images`.

``source`` is ``digits`` (embedded, the default), ``cifar10`` (the original through
torchvision if already present under ``cache_dir``, else the local JPEG archive, else a
torchvision download), ``cifar10-jpg`` / ``cifar10-torchvision`` (one copy explicitly), or a
folder of images. The named ones are :data:`NAMED_SOURCES`, a dict from name to the function
that builds the split. The returned :class:`ImageSource` gives either the uint8
:class:`~byol.data.cache.ImageCache` (``source.cache()``, fixed-size, all in memory) or a
per-image ``Dataset`` (``source.dataset(transform)``), so the engine chooses by
``source.cache_bytes`` whether the cache fits. Evaluation (k-NN, linear probe, embeddings)
reads ``source.eval_cache()``: for a folder of images the official test transform at
``image_size`` (:data:`~byol.data.resize.OFFICIAL_TEST`), for the fixed-size data sets
(digits, CIFAR-10, whose images are already ``image_size`` or are resized whole to it) the
training cache itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from byol.data.cache import (
    CachedImageDataset,
    ImageCache,
    build_folder_cache,
    cache_from_arrays,
    check_cache_size,
)
from byol.data.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_TAR_ENV,
    cifar10_jpg_split,
    cifar10_torchvision_root,
    find_cifar10_tar,
    has_torchvision_cifar10,
    is_cifar10_jpg_unpacked,
    load_cifar10_torchvision,
)
from byol.data.digits import DIGITS_CLASSES, load_digits_arrays
from byol.data.folder import FolderScan, ImageFolderDataset, Validate, scan_folder
from byol.data.resize import OFFICIAL_TEST
from byol.data.subset import select_subset

Split = Literal["train", "test"]


def default_cache_size(image_size: int) -> int:
    """Cache side for folders of arbitrary images: ``ceil(image_size * 256 / 224)``, the
    usual resize-256-for-crop-224 ratio (e.g. 224 -> 256, 96 -> 110)."""
    return math.ceil(image_size * 256 / 224)


@dataclass
class ImageSource:
    """A resolved split: what it is, and how to get its pixels.

    ``name``: ``digits``, ``cifar10-jpg``, ``cifar10-torchvision`` or the folder path.
    ``description``: human-readable, names the copy (for reports). ``num_images``: images
    selected (before unreadable files are skipped). ``cache_size``: ``S`` of :meth:`cache`.
    ``image_size``: side of :meth:`eval_cache`; ``official_eval``: whether evaluation uses the
    official test transform (folders of images of any size) instead of :meth:`cache`.
    """

    name: str
    split: Split
    description: str
    classes: list[str]
    num_images: int
    cache_size: int
    cache_dir: str
    max_images: int | None = None
    num_workers: int | None = None
    progress: bool = True
    scan: FolderScan | None = None
    image_size: int = 224
    official_eval: bool = False
    arrays: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None = field(
        default=None, repr=False
    )
    _cache: ImageCache | None = field(default=None, repr=False)
    _eval_cache: ImageCache | None = field(default=None, repr=False)

    @property
    def has_labels(self) -> bool:
        """Whether images carry class labels (needed for k-NN / linear evaluation)."""
        return len(self.classes) > 0

    @property
    def cache_bytes(self) -> int:
        """Size of the uint8 cache, ``num_images * 3 * S * S`` bytes."""
        return self.num_images * 3 * self.cache_size * self.cache_size

    def cache(self) -> ImageCache:
        """The split as uint8 (N, 3, S, S); built on first use, then reused (memoised)."""
        if self._cache is None:
            if self.arrays is not None:
                images, labels = self.arrays
                self._cache = cache_from_arrays(
                    images,
                    labels,
                    self.cache_size,
                    classes=self.classes,
                    description=self.description,
                    name=f"{self.name}/{self.split}",
                )
            elif self.scan is not None:
                variant = "" if self.max_images is None else f"max_images={self.max_images}"
                self._cache = build_folder_cache(
                    self.scan,
                    self.cache_dir,
                    self.cache_size,
                    description=self.description,
                    variant=variant,
                    num_workers=self.num_workers,
                    progress=self.progress,
                )
            else:  # pragma: no cover - load_images always sets one of them
                raise ValueError(f"source {self.name!r} has neither arrays nor files")
        return self._cache

    def eval_cache(self) -> ImageCache:
        """The split as evaluation sees it, uint8 (N, 3, image_size, image_size) for folders.

        Folders: each image through the official test transform (shorter side to
        ``round(image_size * 256 / 224)``, centre crop ``image_size``), cached apart from the
        training cache; other sources: :meth:`cache`. Built on first use, then memoised.
        """
        if not self.official_eval or self.scan is None:
            return self.cache()
        if self._eval_cache is None:
            variant = "" if self.max_images is None else f"max_images={self.max_images}"
            self._eval_cache = build_folder_cache(
                self.scan,
                self.cache_dir,
                self.image_size,
                description=self.description,
                variant=variant,
                num_workers=self.num_workers,
                progress=self.progress,
                policy=OFFICIAL_TEST,
            )
        return self._eval_cache

    def dataset(
        self,
        transform: Callable[[Image.Image], Any] | None = None,
        validate: Validate = "header",
    ) -> torch.utils.data.Dataset[tuple[Any, int]]:
        """Per-image ``Dataset`` of ``(transform(PIL RGB image), label)``.

        Folders decode each file on access at its own size (``validate`` as in
        :class:`~byol.data.folder.ImageFolderDataset`); in-memory datasets serve their
        cached ``S x S`` images.
        """
        if self.scan is not None:
            return ImageFolderDataset(
                self.scan, transform=transform, validate=validate, num_workers=self.num_workers
            )
        return CachedImageDataset(self.cache(), transform)


def load_images(
    source: str,
    split: Split,
    cache_dir: str | os.PathLike[str],
    *,
    cache_size: int | None = None,
    image_size: int = 224,
    max_images: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    download: bool = True,
) -> ImageSource:
    """Resolve ``source`` and ``split`` (see the module docstring) without decoding yet.

    A named source (a key of :data:`NAMED_SOURCES`, any case) is built by its builder; anything
    else must be a folder, which uses its ``train``/``test`` sub-folder when present, else the
    folder itself for both splits. ``cache_size``: ``S``; None keeps 32 for digits and CIFAR-10
    and uses :func:`default_cache_size` of ``image_size`` for folders. ``max_images``: a
    deterministic class-balanced subset (:func:`~byol.data.subset.select_subset`).
    ``download``: allow torchvision to download CIFAR-10 when no local copy exists.
    Raises ``ValueError`` naming the bad value for an unknown source, a bad split or size.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    if cache_size is not None:
        check_cache_size(cache_size)
    select_subset([], max_images)  # validates max_images
    request = _Request(
        split=split,
        cache_dir=str(Path(cache_dir).expanduser()),
        cache_size=cache_size,
        image_size=image_size,
        max_images=max_images,
        num_workers=num_workers,
        progress=progress,
        download=download,
    )
    name = source.strip()
    builder = NAMED_SOURCES.get(name.lower())
    if builder is not None:
        return builder(request)
    root = Path(name).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"source {source!r} is neither one of {', '.join(NAMED_SOURCES)} nor an existing "
            f"folder; pass a dataset name or a folder of images"
        )
    return _image_folder(root, request)


@dataclass(frozen=True)
class _Request:
    """The arguments of :func:`load_images`, checked, that every source builder reads."""

    split: Split
    cache_dir: str  # expanded
    cache_size: int | None
    image_size: int
    max_images: int | None
    num_workers: int | None
    progress: bool
    download: bool

    def source(self, **described: Any) -> ImageSource:
        """An :class:`ImageSource` of this request and the builder's ``described`` fields."""
        return ImageSource(
            split=self.split,
            cache_dir=self.cache_dir,
            max_images=self.max_images,
            num_workers=self.num_workers,
            progress=self.progress,
            **described,
        )


def _subset_arrays(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], max_images: int | None
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if max_images is None:
        return images, labels
    keep = np.asarray(select_subset(labels.tolist(), max_images), dtype=np.int64)
    return images[keep], labels[keep]


def _digits(request: _Request) -> ImageSource:
    size = request.cache_size or 32
    # Upsampled straight from 8x8 to S, not via 32.
    images, labels = _subset_arrays(*load_digits_arrays(request.split, size), request.max_images)
    return request.source(
        name="digits",
        description=f"scikit-learn digits ({request.split}, 8x8 upsampled to {size}x{size})",
        classes=list(DIGITS_CLASSES),
        num_images=len(labels),
        cache_size=size,
        arrays=(images, labels),
    )


def _cifar10(request: _Request) -> ImageSource:
    """The torchvision copy if present under ``cache_dir``, else the local JPEG archive, else
    a torchvision download (where ``download`` allows it)."""
    torchvision_root = cifar10_torchvision_root(request.cache_dir)
    if has_torchvision_cifar10(torchvision_root):
        return _cifar10_torchvision(request)
    if is_cifar10_jpg_unpacked(request.cache_dir) or find_cifar10_tar() is not None:
        return _cifar10_jpg(request)
    if request.download:
        return _cifar10_torchvision(request)
    raise ValueError(
        f"cifar10: no local copy (torchvision files in {torchvision_root} or the "
        f"JPEG archive) and download=False; set {CIFAR10_TAR_ENV} or allow download"
    )


def _cifar10_torchvision(request: _Request) -> ImageSource:
    torchvision_root = cifar10_torchvision_root(request.cache_dir)
    images, labels = _subset_arrays(
        *load_cifar10_torchvision(request.split, torchvision_root, request.download),
        request.max_images,
    )
    return request.source(
        name="cifar10-torchvision",
        description=f"CIFAR-10 original binary release ({request.split})",
        classes=list(CIFAR10_CLASSES),
        num_images=len(labels),
        cache_size=request.cache_size or 32,
        arrays=(images, labels),
    )


def _cifar10_jpg(request: _Request) -> ImageSource:
    scan = scan_folder(cifar10_jpg_split(request.split, request.cache_dir))
    scan = scan.subset(select_subset(scan.labels, request.max_images))
    return request.source(
        name="cifar10-jpg",
        description=f"CIFAR-10 JPEG copy ({request.split}; pixels JPEG-compressed once)",
        classes=list(scan.classes),
        num_images=len(scan),
        cache_size=request.cache_size or 32,
        scan=scan,
    )


def _image_folder(root: Path, request: _Request) -> ImageSource:
    """``root/<split>`` when that sub-folder exists, else ``root`` itself for both splits."""
    candidate = root / request.split
    folder = candidate if candidate.is_dir() else root
    scan = scan_folder(folder)
    scan = scan.subset(select_subset(scan.labels, request.max_images))
    return request.source(
        name=str(root),
        description=f"image folder {folder}",
        classes=list(scan.classes),
        num_images=len(scan),
        cache_size=request.cache_size or default_cache_size(request.image_size),
        scan=scan,
        image_size=request.image_size,
        official_eval=True,
    )


# The named data sets, by lower-case name, and the builder of each.
NAMED_SOURCES: dict[str, Callable[[_Request], ImageSource]] = {
    "digits": _digits,
    "cifar10": _cifar10,
    "cifar10-jpg": _cifar10_jpg,
    "cifar10-torchvision": _cifar10_torchvision,
}
