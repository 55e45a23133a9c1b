"""One entry point from ``DataConfig.source`` to images: :func:`load_images`.

``source`` is ``digits`` (embedded, the default), ``cifar10`` (the original through
torchvision if already present under ``cache_dir``, else the local JPEG archive, else a
torchvision download), ``cifar10-jpg`` / ``cifar10-torchvision`` (one copy explicitly), or a
folder of images. The returned :class:`ImageSource` gives either the uint8
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
NAMED_SOURCES: tuple[str, ...] = ("digits", "cifar10", "cifar10-jpg", "cifar10-torchvision")


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


def _subset_arrays(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], max_images: int | None
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if max_images is None:
        return images, labels
    keep = np.asarray(select_subset(labels.tolist(), max_images), dtype=np.int64)
    return images[keep], labels[keep]


def _folder_for_split(root: Path, split: Split) -> Path:
    candidate = root / split
    return candidate if candidate.is_dir() else root


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

    A folder source uses its ``train``/``test`` sub-folder when present, else the folder
    itself for both splits. ``cache_size``: ``S``; None keeps 32 for digits and CIFAR-10 and
    uses :func:`default_cache_size` of ``image_size`` for folders. ``max_images``: a
    deterministic class-balanced subset (:func:`~byol.data.subset.select_subset`).
    ``download``: allow torchvision to download CIFAR-10 when no local copy exists.
    Raises ``ValueError`` naming the bad value for an unknown source, a bad split or size.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    if cache_size is not None:
        check_cache_size(cache_size)
    select_subset([], max_images)  # validates max_images
    cache_root = str(Path(cache_dir).expanduser())
    common: dict[str, Any] = {
        "split": split,
        "cache_dir": cache_root,
        "max_images": max_images,
        "num_workers": num_workers,
        "progress": progress,
    }
    name = source.strip()
    lowered = name.lower()

    if lowered == "digits":
        size = cache_size or 32
        # Upsampled straight from 8x8 to S, not via 32.
        images, labels = _subset_arrays(*load_digits_arrays(split, size), max_images)
        return ImageSource(
            name="digits",
            description=f"scikit-learn digits ({split}, 8x8 upsampled to {size}x{size})",
            classes=list(DIGITS_CLASSES),
            num_images=len(labels),
            cache_size=size,
            arrays=(images, labels),
            **common,
        )

    if lowered in ("cifar10", "cifar10-torchvision", "cifar10-jpg"):
        torchvision_root = cifar10_torchvision_root(cache_root)
        if lowered == "cifar10":
            if has_torchvision_cifar10(torchvision_root):
                lowered = "cifar10-torchvision"
            elif is_cifar10_jpg_unpacked(cache_root) or find_cifar10_tar() is not None:
                lowered = "cifar10-jpg"
            elif download:
                lowered = "cifar10-torchvision"
            else:
                raise ValueError(
                    f"cifar10: no local copy (torchvision files in {torchvision_root} or the "
                    f"JPEG archive) and download=False; set {CIFAR10_TAR_ENV} or allow download"
                )
        size = cache_size or 32
        if lowered == "cifar10-torchvision":
            images, labels = _subset_arrays(
                *load_cifar10_torchvision(split, torchvision_root, download), max_images
            )
            return ImageSource(
                name="cifar10-torchvision",
                description=f"CIFAR-10 original binary release ({split})",
                classes=list(CIFAR10_CLASSES),
                num_images=len(labels),
                cache_size=size,
                arrays=(images, labels),
                **common,
            )
        scan = scan_folder(cifar10_jpg_split(split, cache_root))
        scan = scan.subset(select_subset(scan.labels, max_images))
        return ImageSource(
            name="cifar10-jpg",
            description=f"CIFAR-10 JPEG copy ({split}; pixels JPEG-compressed once)",
            classes=list(scan.classes),
            num_images=len(scan),
            cache_size=size,
            scan=scan,
            **common,
        )

    root = Path(name).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"source {source!r} is neither one of {', '.join(NAMED_SOURCES)} nor an existing "
            f"folder; pass a dataset name or a folder of images"
        )
    folder = _folder_for_split(root, split)
    scan = scan_folder(folder)
    scan = scan.subset(select_subset(scan.labels, max_images))
    return ImageSource(
        name=str(root),
        description=f"image folder {folder}",
        classes=list(scan.classes),
        num_images=len(scan),
        cache_size=cache_size or default_cache_size(image_size),
        scan=scan,
        image_size=image_size,
        official_eval=True,
        **common,
    )
