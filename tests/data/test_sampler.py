from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from byol.data.sampler import EpochSampler


def rank_batches(num: int, batch: int, world: int, epoch: int, seed: int = 0) -> list[list[int]]:
    """Per rank, the flat list of indices it sees in ``epoch``."""
    out = []
    for rank in range(world):
        sampler = EpochSampler(num, batch, seed=seed, rank=rank, world_size=world)
        out.append(torch.cat(list(sampler.batches(epoch))).tolist())
    return out


@settings(max_examples=40, deadline=None)
@given(
    num=st.integers(1, 200),
    world=st.sampled_from([1, 2, 3, 4]),
    per_rank=st.integers(1, 8),
    epoch=st.integers(0, 5),
)
def test_ranks_are_disjoint_and_cover_full_batches(
    num: int, world: int, per_rank: int, epoch: int
) -> None:
    batch = world * per_rank
    if batch > num:
        with pytest.raises(ValueError, match="larger than the dataset"):
            EpochSampler(num, batch, world_size=world)
        return
    seen = rank_batches(num, batch, world, epoch)
    flat = [i for indices in seen for i in indices]
    assert len(flat) == len(set(flat)) == (num // batch) * batch
    assert all(0 <= i < num for i in flat)
    # Only the N % B samples at the end of the permutation are dropped.
    single = EpochSampler(num, batch, world_size=1)
    assert set(flat) == set(single.permutation(epoch)[: len(flat)].tolist())


def test_rank_slices_reassemble_the_single_process_batches() -> None:
    single = list(EpochSampler(50, 12, seed=3).batches(2))
    shards = [list(EpochSampler(50, 12, seed=3, rank=r, world_size=3).batches(2)) for r in range(3)]
    assert len(single) == 4
    for step, global_batch in enumerate(single):
        assert torch.equal(torch.cat([shards[r][step] for r in range(3)]), global_batch)


def test_resume_inside_an_epoch_gives_the_remaining_batches() -> None:
    sampler = EpochSampler(97, 8, seed=11, rank=1, world_size=2)
    full = list(sampler.batches(4))
    assert len(full) == 12 and all(b.shape == (4,) and b.dtype == torch.int64 for b in full)
    for start in (0, 1, 7, 12):
        resumed = list(sampler.batches(4, start_batch=start))
        assert len(resumed) == len(full) - start
        assert all(torch.equal(a, b) for a, b in zip(resumed, full[start:], strict=True))
    with pytest.raises(ValueError, match="start_batch=13 is past the end"):
        list(sampler.batches(4, start_batch=13))


def test_epochs_and_seeds_give_different_orders() -> None:
    sampler = EpochSampler(1000, 100, seed=0)
    assert torch.equal(sampler.permutation(3), EpochSampler(1000, 100, seed=0).permutation(3))
    assert not torch.equal(sampler.permutation(0), sampler.permutation(1))
    assert not torch.equal(sampler.permutation(0), EpochSampler(1000, 100, seed=1).permutation(0))
    assert sorted(sampler.permutation(5).tolist()) == list(range(1000))
    assert EpochSampler(10, 5, shuffle=False).permutation(9).tolist() == list(range(10))


def test_dataloader_path_matches_batches() -> None:
    sampler = EpochSampler(40, 8, seed=5, rank=0, world_size=2)
    data = TensorDataset(torch.arange(40))
    sampler.set_epoch(3, start_batch=2)
    assert len(sampler) == 3 * 4
    loader = DataLoader(data, sampler=sampler, batch_size=sampler.local_batch_size)
    got = [batch[0] for batch in loader]
    expected = list(sampler.batches(3, start_batch=2))
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_state_dict_round_trip_and_mismatch() -> None:
    sampler = EpochSampler(40, 8, seed=5)
    sampler.set_epoch(6, start_batch=3)
    restored = EpochSampler(40, 8, seed=5)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == list(sampler)
    with pytest.raises(ValueError, match="global_batch_size=8 but this run has 16"):
        EpochSampler(40, 16, seed=5).load_state_dict(sampler.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 0, "global_batch_size": 1}, "num_samples=0"),
        ({"num_samples": 10, "global_batch_size": 6, "world_size": 4}, "not divisible"),
        ({"num_samples": 10, "global_batch_size": 4, "rank": 2, "world_size": 2}, "rank=2"),
        ({"num_samples": 10, "global_batch_size": 4, "rank": -1}, "rank=-1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpochSampler(**kwargs)
