"""The views of an image do not depend on how many processes share the global batch."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from byol.augment import BatchedTwoViews, ReferenceTwoViews
from byol.config import AugmentConfig
from byol.data.sampler import EpochSampler
from byol.train.views import CachedViewSource, LoaderViewSource, ViewBatch, _SeededTwoViews

NUM_IMAGES, GLOBAL_BATCH, WORLD = 24, 8, 2
CPU = torch.device("cpu")


def _images() -> torch.Tensor:
    return torch.randint(
        0, 256, (NUM_IMAGES, 3, 12, 12), generator=torch.Generator().manual_seed(0)
    )


def _sampler(rank: int, world_size: int) -> EpochSampler:
    return EpochSampler(NUM_IMAGES, GLOBAL_BATCH, seed=3, rank=rank, world_size=world_size)


def _epoch(source: CachedViewSource | LoaderViewSource) -> list[ViewBatch]:
    return list(source.epoch_batches(epoch=1))


def _assert_ranks_cover_the_single_process_batches(
    single: list[ViewBatch],
    ranks: list[list[ViewBatch]],
) -> None:
    assert len(single) == NUM_IMAGES // GLOBAL_BATCH
    for batch, (view_1, view_2, _) in enumerate(single):
        # EpochSampler's layout: rank r holds rows r * B / W ... (r + 1) * B / W.
        torch.testing.assert_close(torch.cat([rank[batch][0] for rank in ranks]), view_1)
        torch.testing.assert_close(torch.cat([rank[batch][1] for rank in ranks]), view_2)


def test_batched_views_of_two_ranks_are_the_rows_of_the_single_process_views() -> None:
    images = _images().to(torch.uint8)
    augment = BatchedTwoViews(AugmentConfig(image_size=8))

    def source(rank: int, world_size: int) -> CachedViewSource:
        labels = torch.arange(NUM_IMAGES) % 3
        return CachedViewSource(images, labels, 3, _sampler(rank, world_size), augment, CPU, seed=5)

    single = _epoch(source(0, 1))
    _assert_ranks_cover_the_single_process_batches(
        single, [_epoch(source(rank, WORLD)) for rank in range(WORLD)]
    )
    # Not trivially so: different batches get different views.
    assert not torch.allclose(single[0][0][0], single[0][1][0])
    # Each batch carries the labels of its own images, rank by rank.
    single_labels = torch.cat([labels for _, _, labels in single])
    sampler = _sampler(0, 1)
    order = torch.cat(list(sampler.batches(1)))
    torch.testing.assert_close(single_labels, torch.arange(NUM_IMAGES)[order] % 3)


def test_per_image_views_of_two_ranks_are_the_rows_of_the_single_process_views() -> None:
    dataset = TensorDataset(_images().to(torch.uint8), torch.zeros(NUM_IMAGES, dtype=torch.int64))
    transform = ReferenceTwoViews(AugmentConfig(image_size=8))

    def source(rank: int, world_size: int) -> LoaderViewSource:
        views = _SeededTwoViews(dataset, transform, seed=5)  # type: ignore[arg-type]
        return LoaderViewSource(views, _sampler(rank, world_size), CPU, num_workers=0)

    single = _epoch(source(0, 1))
    _assert_ranks_cover_the_single_process_batches(
        single, [_epoch(source(rank, WORLD)) for rank in range(WORLD)]
    )
