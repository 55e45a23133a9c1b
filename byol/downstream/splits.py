"""Labelled train/test splits for evaluating an encoder at any image size, on any labelled data.

The same preparation serves ``byol eval knn``, ``byol eval linear`` and ``byol finetune``, so
their figures for one data set and image size ``S`` see the same test pixels:

* folders: evaluation sees each image through the official test transform (shorter side
  resized to ``round(S * 256 / 224)``, then the centre ``S x S``;
  :data:`byol.data.resize.OFFICIAL_TEST`), test images and the frozen features of the
  training images alike; fine-tuning and the official linear protocol take random crops of
  the whole image, cached at ``C = ceil(S * 256 / 224)`` (the cache of ``byol train``);
* the built-in 32 px data sets (``digits``, ``cifar10``), already tightly framed: the whole
  image, resized to ``S x S`` (bicubic, antialiased) when ``S != 32``.

:attr:`LabelledSplits.policy` says which, in words, for the JSON results.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from byol.atomic import write_bytes
from byol.config import Config
from byol.data.cache import ImageCache
from byol.data.label_subset import check_subset_request, label_subset
from byol.data.registry import NAMED_SOURCES
from byol.data.resize import eval_resize_size
from byol.eval.splits import check_labelled, labelled_sources

# Side of the built-in data sets' cache (digits are upsampled to it from 8x8).
NAMED_SOURCE_SIDE = 32


@dataclass(frozen=True)
class ResizePolicy:
    """How test images reach ``image_size``: cache side, then an optional centre crop.

    ``cache_size``: side C of the training cache. ``crop_size``: the official test transform's
    centre crop (``image_size``), None for the whole image, which the evaluation batches
    resize to ``image_size`` when its side differs.
    """

    image_size: int
    cache_size: int
    crop_size: int | None

    @property
    def description(self) -> str:
        """The policy in words, e.g. ``resize shorter side to 256, centre crop 224``."""
        size = self.image_size
        if self.crop_size is None:
            resized = "" if self.cache_size == size else f", resized to {size}x{size}"
            return f"whole image ({self.cache_size}x{self.cache_size}{resized}, bicubic)"
        return f"resize shorter side to {eval_resize_size(size)}, centre crop {size} (bicubic)"


def resize_policy(source: str, image_size: int, cache_size: int | None = None) -> ResizePolicy:
    """The policy for ``source`` at ``image_size`` (``data.cache_size`` overrides ``C``)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"--image-size {image_size!r} must be a positive integer, e.g. 224")
    if source.strip().lower() in NAMED_SOURCES:
        return ResizePolicy(image_size, cache_size or NAMED_SOURCE_SIDE, None)
    cache = cache_size or math.ceil(image_size * 256 / 224)
    return ResizePolicy(image_size, cache, image_size)


@dataclass(frozen=True)
class LabelledSplits:
    """Train and test split as uint8 caches prepared by :func:`prepare_splits`.

    ``train`` is the (possibly label-reduced) training split as training caches it (the whole
    image, for random crops), ``train_features`` the same images as evaluation sees them,
    ``test`` the whole test split as evaluation sees it; ``train_full_size`` counts the
    training images before the label subset; ``subset`` describes the subset (None when all
    labels are used); ``config`` the configuration they were prepared with.
    """

    train: ImageCache
    train_features: ImageCache
    test: ImageCache
    policy: ResizePolicy
    train_full_size: int
    subset: dict[str, float | int] | None
    config: Config

    def summary(self) -> dict[str, object]:
        """What the JSON results say about the images: size, resize policy, counts, subset."""
        return {
            "image_size": self.policy.image_size,
            "resize_policy": self.policy.description,
            "train_images": len(self.train),
            "test_images": len(self.test),
            "label_subset": self.subset,
        }

    def train_for_features(self) -> ImageCache:
        """The training split as the test split is prepared, for frozen features: a k-NN
        bank, the fast linear probe."""
        return self.train_features


def prepare_splits(
    config: Config,
    source: str,
    image_size: int | None = None,
    *,
    label_fraction: float | None = None,
    labels_per_class: int | None = None,
    seed: int = 0,
) -> LabelledSplits:
    """Load ``source``'s labelled splits for evaluation at ``image_size`` (default: the run's).

    Returns the splits and ``config`` for them (``augment.image_size`` the evaluation size,
    ``data.cache_size`` the training cache's side; ``config`` itself is not changed). With
    ``label_fraction`` or ``labels_per_class``, the training split keeps a seeded,
    class-balanced subset (:func:`byol.data.label_subset.label_subset`); the test split stays
    whole.
    """
    size = config.augment.image_size if image_size is None else image_size
    policy = resize_policy(source, size, config.data.cache_size)
    wants_subset = label_fraction is not None or labels_per_class is not None
    if wants_subset:
        check_subset_request(label_fraction, labels_per_class)
    config = dataclasses.replace(
        config,
        augment=dataclasses.replace(config.augment, image_size=size),
        data=dataclasses.replace(config.data, cache_size=policy.cache_size),
    )
    train_source, test_source = labelled_sources(config, source)
    train, train_features, test = (
        train_source.cache(),
        train_source.eval_cache(),
        test_source.eval_cache(),
    )
    check_labelled(source, train, test)
    if train.classes != test.classes:
        raise ValueError(
            f"{source}: the train split has classes {train.classes} but the test split "
            f"{test.classes}; give both splits the same class sub-folders"
        )
    subset: dict[str, float | int] | None = None
    full_size = len(train)
    if wants_subset:
        keep = label_subset(
            train.labels.tolist(), fraction=label_fraction, per_class=labels_per_class, seed=seed
        )
        train, train_features = select(train, keep), select(train_features, keep)
        subset = {"train_images": len(keep), "train_images_available": full_size, "seed": seed}
        if label_fraction is not None:
            subset["label_fraction"] = label_fraction
        else:
            subset["labels_per_class"] = labels_per_class or 0
    return LabelledSplits(train, train_features, test, policy, full_size, subset, config)


def select(cache: ImageCache, indices: list[int]) -> ImageCache:
    """The items ``indices`` of ``cache`` (images, labels and paths), in that order."""
    return dataclasses.replace(
        cache,
        images=cache.images[indices],
        labels=cache.labels[indices],
        paths=[cache.paths[i] for i in indices],
    )


def relative_paths(paths: list[str], source: str) -> list[str]:
    """``paths`` relative to the data folder ``source`` (to their common folder for a named
    data set's files; in-memory items such as ``digits/train[3]`` stay as they are)."""
    absolute = [path for path in paths if os.path.isabs(path)]
    if not absolute:
        return list(paths)
    root = Path(source).expanduser()
    base = (
        str(root.resolve())
        if root.is_dir()
        else os.path.commonpath([os.path.dirname(p) for p in absolute])
    )
    return [os.path.relpath(p, base) if os.path.isabs(p) else p for p in paths]


def write_labels_used(path: Path, cache: ImageCache, source: str) -> Path:
    """The training images a result used, one relative path per line (dataset order)."""
    text = "".join(f"{name}\n" for name in relative_paths(cache.paths, source))
    return write_bytes(path, text.encode("utf-8", errors="surrogateescape"))
