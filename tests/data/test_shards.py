"""Tar shards: ``byol shard`` writes the folder's own files; streaming them over ranks and
workers serves every image once per epoch, with the views the folder would give."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import pytest
import torch

from byol.augment import ReferenceTwoViews
from byol.cli.main import main
from byol.config import AugmentConfig
from byol.data.registry import load_images
from byol.data.shards import ShardSet, ShardStream, read_shard, read_shard_set
from byol.train.engine import train
from byol.train.views import _SeededTwoViews, batch_seed
from tests.helpers import tiny_train_config

IMAGES, PER_SHARD, WORLD, WORKERS, LOCAL_BATCH = 64, 8, 2, 2, 8


def _stream(shards: ShardSet, rank: int, transform: ReferenceTwoViews | None = None) -> ShardStream:
    return ShardStream(
        shards,
        transform or ReferenceTwoViews(AugmentConfig(image_size=16)),
        partial(batch_seed, 0),
        local_batch_size=LOCAL_BATCH,
        rank=rank,
        world_size=WORLD,
        num_workers=WORKERS,
        seed=0,
        shuffle_buffer=5,
    )


@pytest.fixture(scope="module")
def cifar_shards(
    cifar10_jpg_root: Path, shared_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> ShardSet:
    out = tmp_path_factory.mktemp("shards") / "cifar"
    sizes = ["--images-per-shard", str(PER_SHARD), "--max-images", str(IMAGES)]
    status = main(
        ["shard", "cifar10-jpg", "--out", str(out), *sizes, "--cache-dir", str(shared_cache_dir)]
    )
    assert status == 0
    return read_shard_set(out)


def test_shards_hold_the_folder_files_and_labels(
    cifar_shards: ShardSet, shared_cache_dir: Path
) -> None:
    scan = load_images("cifar10-jpg", "train", shared_cache_dir, max_images=IMAGES).scan
    assert scan is not None
    expected = {
        index: (hashlib.sha256(Path(path).read_bytes()).hexdigest(), label)
        for index, (path, label) in enumerate(zip(scan.paths, scan.labels, strict=True))
    }
    found = {
        index: (hashlib.sha256(data).hexdigest(), label)
        for name in cifar_shards.files
        for index, data, label in read_shard(cifar_shards.root / name)
    }
    assert found == expected
    assert cifar_shards.counts == (PER_SHARD,) * (IMAGES // PER_SHARD)


def test_ranks_and_workers_stream_every_image_once_per_epoch(cifar_shards: ShardSet) -> None:
    for epoch in (0, 1):
        seen: list[int] = []
        for rank in range(WORLD):
            stream = _stream(cifar_shards, rank)
            stream.set_epoch(epoch)
            assert stream.batches_per_epoch == IMAGES // (WORLD * LOCAL_BATCH)
            for worker in range(WORKERS):
                seen += [index for index, _, _ in stream.samples(worker)]
        assert sorted(seen) == list(range(IMAGES))


def test_resumed_epoch_continues_each_worker_stream(cifar_shards: ShardSet) -> None:
    stream = _stream(cifar_shards, rank=1)
    stream.set_epoch(3)
    full = [[index for index, _, _ in stream.samples(worker)] for worker in range(WORKERS)]
    # Batches 0, 1, 2 were served by workers 0, 1, 0 (a DataLoader takes them in turn).
    stream.set_epoch(3, start_batch=3)
    rest = [[index for index, _, _ in stream.samples(worker)] for worker in range(WORKERS)]
    assert rest == [full[0][2 * LOCAL_BATCH :], full[1][LOCAL_BATCH:]]


def test_streamed_views_equal_the_folder_views(
    cifar_shards: ShardSet, shared_cache_dir: Path
) -> None:
    transform = ReferenceTwoViews(AugmentConfig(image_size=16))
    folder = _SeededTwoViews(
        load_images("cifar10-jpg", "train", shared_cache_dir, max_images=IMAGES).dataset(),
        transform,
        seed=0,
    )
    folder.epoch = 2
    stream = _stream(cifar_shards, rank=0, transform=transform)
    stream.set_epoch(2)
    indices = [index for index, _, _ in stream.samples(0)]
    for index, (view_1, view_2) in zip(indices[:4], stream, strict=False):
        expected_1, expected_2, _ = folder[index]
        torch.testing.assert_close(view_1, expected_1)
        torch.testing.assert_close(view_2, expected_2)


def test_training_runs_from_a_shard_folder(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    sizes = ["--images-per-shard", "32", "--max-images", "128"]
    assert (
        main(["shard", "digits", "--out", str(shards), *sizes, "--cache-dir", str(tmp_path)]) == 0
    )
    config = tiny_train_config(tmp_path, source=str(shards), max_images=None)
    config.optim.batch_size = 32
    config.train.epochs = 1
    result = train(config, progress=False)
    assert result.steps == 128 // 32 and result.num_images == 128


def test_shard_folder_is_not_overwritten(tmp_path: Path) -> None:
    args = ["shard", "digits", "--out", str(tmp_path), "--max-images", "20"]
    assert main([*args, "--cache-dir", str(tmp_path / "cache")]) == 0
    assert main([*args, "--cache-dir", str(tmp_path / "cache")]) == 2
