from __future__ import annotations

from collections import Counter

import pytest

from byol.data.subset import select_subset


def test_labelled_subset_takes_the_first_of_each_class() -> None:
    labels = [0, 1, 2] * 5 + [1] * 5  # class 1 is larger
    chosen = select_subset(labels, 7)
    assert chosen == sorted(chosen)
    counts = Counter(labels[i] for i in chosen)
    # Balanced to within one; the extra item goes to the lowest class index.
    assert counts == {0: 3, 1: 2, 2: 2}
    # The first members of each class in dataset order.
    for label in counts:
        members = [i for i, x in enumerate(labels) if x == label]
        assert [i for i in chosen if labels[i] == label] == members[: counts[label]]
    assert select_subset(labels, 7) == chosen


def test_short_class_gives_its_share_to_the_others() -> None:
    labels = [0] * 10 + [1] * 1 + [2] * 10
    chosen = select_subset(labels, 9)
    assert Counter(labels[i] for i in chosen) == {0: 4, 1: 1, 2: 4}


def test_unlabelled_subset_is_evenly_spaced() -> None:
    assert select_subset([-1] * 10, 4) == [0, 2, 5, 7]


def test_everything_when_no_limit_or_limit_too_large() -> None:
    assert select_subset([0, 1, 1], None) == [0, 1, 2]
    assert select_subset([0, 1, 1], 10) == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_max_images(bad: object) -> None:
    with pytest.raises(ValueError, match="max_images="):
        select_subset([0, 1], bad)  # type: ignore[arg-type]
