"""Seeded, class-balanced label subsets (few-label evaluation)."""

from collections import Counter

import pytest

from byol.data.label_subset import class_share, label_subset

# Classes of 10, 20 and 31 items, interleaved as a folder scan would not be.
LABELS = [0] * 10 + [1] * 20 + [2] * 31
LABELS = LABELS[::2] + LABELS[1::2]


def _counts(indices: list[int]) -> Counter[int]:
    return Counter(LABELS[i] for i in indices)


def test_fraction_keeps_the_rounded_share_of_every_class_at_least_one() -> None:
    indices = label_subset(LABELS, fraction=0.1, seed=0)
    assert _counts(indices) == {0: 1, 1: 2, 2: 3}  # round(1.0), round(2.0), round(3.1)
    assert _counts(label_subset(LABELS, fraction=0.01, seed=0)) == {0: 1, 1: 1, 2: 1}
    assert _counts(label_subset(LABELS, fraction=0.5, seed=0)) == {0: 5, 1: 10, 2: 16}
    assert len(label_subset(LABELS, fraction=1.0, seed=0)) == len(LABELS)
    assert class_share(5, fraction=0.5, per_class=None) == 3  # halves round up


def test_per_class_count_takes_all_of_a_smaller_class() -> None:
    assert _counts(label_subset(LABELS, per_class=15, seed=0)) == {0: 10, 1: 15, 2: 15}


def test_subset_is_sorted_unique_and_seeded() -> None:
    first = label_subset(LABELS, fraction=0.3, seed=7)
    assert first == sorted(set(first))
    assert first == label_subset(LABELS, fraction=0.3, seed=7)
    assert first != label_subset(LABELS, fraction=0.3, seed=8)
    # Not simply the first items of each class.
    assert first != sorted(
        i for c in (0, 1, 2) for i in [j for j, v in enumerate(LABELS) if v == c][:3]
    )


def test_smaller_fraction_lies_inside_larger_one_for_one_seed() -> None:
    small = set(label_subset(LABELS, fraction=0.1, seed=3))
    large = set(label_subset(LABELS, fraction=0.5, seed=3))
    assert small < large


@pytest.mark.parametrize(
    ("fraction", "per_class", "message"),
    [
        (None, None, "exactly one"),
        (0.1, 5, "exactly one"),
        (0.0, None, "(0, 1]"),
        (1.5, None, "(0, 1]"),
        (None, 0, "positive integer"),
    ],
)
def test_bad_requests_name_the_value(
    fraction: float | None, per_class: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        label_subset(LABELS, fraction=fraction, per_class=per_class)


def test_unlabelled_items_are_refused() -> None:
    with pytest.raises(ValueError, match="unlabelled"):
        label_subset([0, 1, -1], fraction=0.5)
