"""Datasets for BYOL: image folders, CIFAR-10, the embedded digits, the uint8 cache, samplers.

Start from :func:`load_images`; see :mod:`byol.data.registry`.
"""

from byol.data.cache import CachedImageDataset, ImageCache, build_folder_cache
from byol.data.cifar10 import (
    CIFAR10_CLASSES,
    find_cifar10_tar,
    load_cifar10_torchvision,
    unpack_cifar10_jpg,
)
from byol.data.digits import DIGITS_CLASSES, load_digits_arrays
from byol.data.folder import (
    IMAGE_EXTENSIONS,
    FolderScan,
    ImageFolderDataset,
    SkippedImagesWarning,
    open_rgb,
    scan_folder,
    to_rgb,
)
from byol.data.registry import ImageSource, default_cache_size, load_images
from byol.data.sampler import EpochSampler
from byol.data.subset import select_subset

__all__ = [
    "CIFAR10_CLASSES",
    "DIGITS_CLASSES",
    "IMAGE_EXTENSIONS",
    "CachedImageDataset",
    "EpochSampler",
    "FolderScan",
    "ImageCache",
    "ImageFolderDataset",
    "ImageSource",
    "SkippedImagesWarning",
    "build_folder_cache",
    "default_cache_size",
    "find_cifar10_tar",
    "load_cifar10_torchvision",
    "load_digits_arrays",
    "load_images",
    "open_rgb",
    "scan_folder",
    "select_subset",
    "to_rgb",
    "unpack_cifar10_jpg",
]
