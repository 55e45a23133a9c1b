"""The labelled train and test splits that k-NN and linear evaluation score an encoder on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from byol.config import Config
from byol.data.cache import ImageCache
from byol.data.registry import ImageSource, load_images
from byol.data.shards import is_shard_folder

SPLITS: tuple[Literal["train"], Literal["test"]] = ("train", "test")


def labelled_sources(config: Config, source: str) -> tuple[ImageSource, ImageSource]:
    """The train and test splits of a labelled ``source``, not decoded yet.

    The train split follows ``config.data.max_images``; the test split is always whole. A
    folder must hold ``train/`` and ``test/`` sub-folders: scoring the bank against itself
    would report a meaningless 100%.
    """
    check_split_folders(source)
    train, test = (
        load_images(
            source,
            split,
            config.data.cache_dir,
            cache_size=config.data.cache_size,
            image_size=config.augment.image_size,
            max_images=config.data.max_images if split == "train" else None,
            num_workers=config.data.num_workers,
            progress=False,
        )
        for split in SPLITS
    )
    return train, test


def load_labelled_splits(config: Config, source: str) -> tuple[ImageCache, ImageCache]:
    """The train and test splits of a labelled ``source`` as evaluation sees them
    (:meth:`~byol.data.registry.ImageSource.eval_cache`: the official test transform for
    folders), as uint8 caches."""
    train, test = (split.eval_cache() for split in labelled_sources(config, source))
    check_labelled(source, train, test)
    return train, test


def check_labelled(source: str, train: ImageCache, test: ImageCache) -> None:
    """Raise ``ValueError`` unless both splits carry class labels."""
    if not (train.has_labels and test.has_labels):
        raise ValueError(
            f"{source!r} has no class labels; k-NN and linear evaluation need class "
            "sub-folders (for monitoring during training, set monitor.knn_every_epochs=0)"
        )


def check_split_folders(source: str) -> None:
    """Raise ``ValueError`` for a folder ``source`` without ``train/`` and ``test/``."""
    root = Path(source).expanduser()
    if not root.is_dir() or is_shard_folder(root):
        return  # a named dataset (digits, cifar10) has its own splits
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        raise ValueError(
            f"{root} has no {' and no '.join(f'{m}/' for m in missing)} sub-folder; k-NN and "
            "linear evaluation need a folder with train/ and test/ sub-folders (of class "
            "folders), so that the test images are not the bank itself"
        )
