"""Deterministic subsets for ``DataConfig.max_images``."""

from __future__ import annotations

from collections.abc import Sequence


def select_subset(labels: Sequence[int], max_images: int | None) -> list[int]:
    """Indices of at most ``max_images`` items, the same on every call.

    Labelled data (all labels >= 0): the first items of each class in dataset order, classes
    as balanced as their sizes allow (counts differ by at most one, lower class indices get the
    extra item; a short class gives its share to the others). Unlabelled data: evenly spaced
    items (``floor(i * N / max_images)``), so every part of a sorted folder is represented.
    The result is sorted (dataset order). ``None`` or ``max_images >= N`` selects everything.

    Raises ``ValueError`` when ``max_images < 1``.
    """
    if max_images is None:
        return list(range(len(labels)))
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(
            f"max_images={max_images!r} must be a positive integer (or None for all images)"
        )
    count = len(labels)
    if max_images >= count:
        return list(range(count))
    if count and min(labels) >= 0:
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(label, []).append(index)
        members = [by_class[c] for c in sorted(by_class)]
        # Round-robin over classes: rank r of every class before rank r + 1 of any class.
        chosen: list[int] = []
        rank = 0
        while len(chosen) < max_images:
            for indices in members:
                if rank < len(indices):
                    chosen.append(indices[rank])
                    if len(chosen) == max_images:
                        break
            rank += 1
        return sorted(chosen)
    return [i * count // max_images for i in range(max_images)]
