"""Seeded, class-balanced subsets of a labelled split, for few-label evaluation.

[paper] Section 4.2 and Table 2 report fine-tuning and linear evaluation with 1% and 10% of
ImageNet's training labels; :func:`label_subset` draws such a subset of any labelled split:
the same share (or the same count) of every class, chosen at random from a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def class_share(class_count: int, *, fraction: float | None, per_class: int | None) -> int:
    """Images kept of a class of ``class_count`` images.

    ``fraction``: ``round(fraction * class_count)`` (halves round up), at least 1, at most the
    class. ``per_class``: ``min(per_class, class_count)``. Exactly one of the two is given.
    """
    if per_class is not None:
        return min(per_class, class_count)
    if fraction is None:
        raise ValueError("give a label fraction or a number of labels per class")
    return min(class_count, max(1, math.floor(fraction * class_count + 0.5)))


def check_subset_request(fraction: float | None, per_class: int | None) -> None:
    """Raise ``ValueError`` unless exactly one of a fraction in (0, 1] and a positive count."""
    if (fraction is None) == (per_class is None):
        raise ValueError(
            f"give exactly one of label fraction ({fraction!r}) and labels per class "
            f"({per_class!r}), e.g. fraction 0.01 for 1% of the labels"
        )
    if fraction is not None and not (
        isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction <= 1
    ):
        raise ValueError(
            f"label fraction {fraction!r} must lie in (0, 1], e.g. 0.01 or 0.1 for the "
            "paper's 1% and 10%"
        )
    if per_class is not None and (
        isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1
    ):
        raise ValueError(f"labels per class {per_class!r} must be a positive integer, e.g. 10")


def label_subset(
    labels: Sequence[int],
    *,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> list[int]:
    """Indices of a seeded, class-balanced subset of ``labels``, sorted (dataset order).

    Each class ``c`` (labels >= 0) keeps :func:`class_share` of its images, picked by one
    random permutation of its members drawn from ``seed``; the permutation does not depend on
    the requested size, so with one seed the subset of a smaller fraction is contained in the
    subset of a larger one (1% inside 10%), and a different seed gives a different subset.

    Args:
        labels: (N,) class index per item; unlabelled items (-1) are refused.
        fraction: share of each class to keep, in (0, 1].
        per_class: images to keep per class (all of a smaller class).
        seed: seed of the draw.

    Raises:
        ValueError: both or neither of ``fraction`` and ``per_class``, either out of range, or
            a negative label.
    """
    check_subset_request(fraction, per_class)
    label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if label_array.size and int(label_array.min()) < 0:
        raise ValueError(
            "labels contain -1 (unlabelled items); a label subset needs class sub-folders"
        )
    generator = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for label in np.unique(label_array):
        members = np.flatnonzero(label_array == label)
        order = generator.permutation(members.size)
        keep = class_share(members.size, fraction=fraction, per_class=per_class)
        chosen.append(members[order[:keep]])
    if not chosen:
        return []
    return sorted(int(index) for index in np.concatenate(chosen))
