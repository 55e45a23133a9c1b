"""The embedded default dataset: scikit-learn's handwritten digits, no download needed.

scikit-learn ships the UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin and
Kaynak, 1998): 1797 grey 8x8 images, 10 classes (``sklearn.datasets.load_digits``), pixel
values 0..16. Here they become uint8 RGB images of ``size x size`` (default 32) and are split
into train/test, stratified by class, with a fixed seed: 1347 train / 450 test.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
DIGITS_TEST_SIZE = 450
DIGITS_SPLIT_SEED = 0


def stratified_split(
    labels: npt.NDArray[np.int64], test_size: int, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split indices into (train, test), each sorted, with ``test_size`` test items.

    Each class gives ``test_size * n_class / N`` test items, rounded by largest remainder so the
    total is exact; which items is drawn by ``numpy.random.default_rng(seed)`` (PCG64, stable
    across numpy versions). ``labels``: (N,) int.
    """
    count = len(labels)
    if not 0 < test_size < count:
        raise ValueError(f"test_size={test_size} must be between 1 and {count - 1}")
    classes, class_counts = np.unique(labels, return_counts=True)
    exact = class_counts * test_size / count
    quota = np.floor(exact).astype(np.int64)
    # Largest remainder first; ties go to the lower class, so the result is deterministic.
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[: test_size - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    test: list[npt.NDArray[np.int64]] = []
    for label, take in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == label)
        test.append(rng.permutation(members)[:take])
    test_indices = np.sort(np.concatenate(test)).astype(np.int64)
    train_mask = np.ones(count, dtype=bool)
    train_mask[test_indices] = False
    return np.flatnonzero(train_mask).astype(np.int64), test_indices


def upsample_grey(
    values: npt.NDArray[np.floating], value_max: float, size: int
) -> npt.NDArray[np.uint8]:
    """Bilinear upsampling of grey images to uint8 RGB.

    ``values``: (N, h, w) in ``0..value_max``. Returns (N, size, size, 3) uint8 with
    ``value_max`` mapped to 255 (rounded).
    """
    grey = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[:, None]
    if grey.shape[-1] != size or grey.shape[-2] != size:
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False)
    scaled = (grey * (255.0 / value_max)).round().clamp(0, 255).to(torch.uint8)
    return scaled[:, 0, :, :, None].expand(-1, -1, -1, 3).contiguous().numpy()


def load_digits_arrays(
    split: Literal["train", "test"], size: int = 32
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Digits as uint8 RGB images.

    Returns ``images`` (N, size, size, 3) uint8 and ``labels`` (N,) int64, N = 1347 for
    ``train`` and 450 for ``test``; the same on every call.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size={size!r} must be a positive integer (e.g. 32)")
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    bunch = load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(labels, DIGITS_TEST_SIZE, DIGITS_SPLIT_SEED)
    chosen = train if split == "train" else test
    images = upsample_grey(np.asarray(bunch.images)[chosen], 16.0, size)
    return images, labels[chosen]
