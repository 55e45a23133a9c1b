"""Evaluation splits at any image size: the resize policy, the centre crop, the label subset."""

from pathlib import Path

import pytest

from byol.config import Config
from byol.downstream.splits import prepare_splits, resize_policy, write_labels_used
from tests.helpers import TEST_PER_CLASS, TRAIN_PER_CLASS


def test_policy_for_folders_and_built_in_data() -> None:
    assert (
        resize_policy("/data/pets", 224).description
        == "resize shorter side to 256, centre crop 224 (bicubic)"
    )
    assert resize_policy("/data/pets", 96).cache_size == 110
    assert resize_policy("cifar10", 32).description == "whole image (32x32, bicubic)"
    assert (
        resize_policy("digits", 64).description == "whole image (32x32, resized to 64x64, bicubic)"
    )
    # data.cache_size sets the training cache only: evaluation stays the official transform.
    policy = resize_policy("/data/pets", 224, cache_size=128)
    assert policy.cache_size == 128
    assert policy.description == "resize shorter side to 256, centre crop 224 (bicubic)"
    with pytest.raises(ValueError, match="--image-size 0"):
        resize_policy("cifar10", 0)


def _config(folder: Path) -> Config:
    config = Config()
    config.data.cache_dir = str(folder / "cache")
    config.data.num_workers = 0
    return config


def test_folder_splits_at_another_size_with_a_saved_label_subset(
    colour_folder: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    splits = prepare_splits(config, str(colour_folder), 24, labels_per_class=4, seed=5)
    # The evaluation batches resize to the size asked for; the caller's config is not changed.
    assert splits.config.augment.image_size == 24 and config.augment.image_size == 224
    assert splits.test.images.shape == (3 * TEST_PER_CLASS, 3, 24, 24)
    assert splits.train.images.shape[-1] == 28  # ceil(24 * 256 / 224): room for random crops
    assert splits.train_for_features().images.shape[-1] == 24
    assert splits.train.labels.bincount().tolist() == [4, 4, 4]
    assert splits.summary()["label_subset"] == {
        "train_images": 12,
        "train_images_available": 3 * TRAIN_PER_CLASS,
        "seed": 5,
        "labels_per_class": 4,
    }
    listed = write_labels_used(tmp_path / "labels_used.txt", splits.train, str(colour_folder))
    lines = listed.read_text().splitlines()
    assert len(lines) == 12 and all(line.startswith("train/class") for line in lines)
    assert all((colour_folder / line).is_file() for line in lines)
    again = prepare_splits(_config(tmp_path), str(colour_folder), 24, labels_per_class=4, seed=5)
    assert again.train.paths == splits.train.paths
    other = prepare_splits(_config(tmp_path), str(colour_folder), 24, labels_per_class=4, seed=6)
    assert other.train.paths != splits.train.paths


def test_mismatched_class_folders_are_refused(colour_folder: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(colour_folder, copy)
    shutil.rmtree(copy / "test" / "class2")
    with pytest.raises(ValueError, match="same class sub-folders"):
        prepare_splits(_config(tmp_path), str(copy), 16)
