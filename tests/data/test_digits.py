from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from byol.data.digits import load_digits_arrays, stratified_split, upsample_grey


def test_split_sizes_shapes_and_labels() -> None:
    train_images, train_labels = load_digits_arrays("train")
    test_images, test_labels = load_digits_arrays("test")
    assert train_images.shape == (1347, 32, 32, 3) and train_images.dtype == np.uint8
    assert test_images.shape == (450, 32, 32, 3)
    assert train_labels.dtype == np.int64
    assert set(train_labels.tolist()) == set(range(10)) == set(test_labels.tolist())
    # Grey images as RGB, full 0..255 range.
    assert (train_images == train_images[..., :1]).all()
    assert train_images.min() == 0 and train_images.max() == 255


def test_split_is_stratified_disjoint_and_deterministic() -> None:
    labels = np.asarray(load_digits().target, dtype=np.int64)
    train, test = stratified_split(labels, 450, seed=0)
    assert len(train) == 1347 and len(test) == 450
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    per_class = np.bincount(labels[test], minlength=10)
    expected = np.bincount(labels, minlength=10) * 450 / 1797
    assert np.abs(per_class - expected).max() < 1
    again_train, again_test = stratified_split(labels, 450, seed=0)
    assert np.array_equal(again_test, test) and np.array_equal(again_train, train)
    _, other_test = stratified_split(labels, 450, seed=1)
    assert not np.array_equal(other_test, test)
    a, _ = load_digits_arrays("test")
    b, _ = load_digits_arrays("test")
    assert np.array_equal(a, b)


def test_values_are_scaled_from_0_16_to_0_255() -> None:
    grey = np.array([[[0, 4], [8, 16]]], dtype=np.float64)
    same_size = upsample_grey(grey, 16.0, 2)
    assert same_size[0, ..., 0].tolist() == [[0, 64], [128, 255]]
    bigger = upsample_grey(grey, 16.0, 8)
    assert bigger.shape == (1, 8, 8, 3)
    # Bilinear upsampling keeps corners and stays within the input range.
    assert bigger[0, 0, 0, 0] == 0 and bigger[0, -1, -1, 0] == 255


def test_matches_sklearn_images_at_native_size() -> None:
    bunch = load_digits()
    _, test = stratified_split(np.asarray(bunch.target, dtype=np.int64), 450, seed=0)
    images, labels = load_digits_arrays("test", size=8)
    np.testing.assert_array_equal(labels, bunch.target[test])
    expected = np.rint(bunch.images[test] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(images[..., 0], expected)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split='val'"):
        load_digits_arrays("val")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size=0"):
        load_digits_arrays("train", size=0)
