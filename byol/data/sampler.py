"""Resumable, distributed-aware epoch order for training.

Epoch ``e`` of a run with seed ``s`` visits the ``N`` samples in one permutation drawn from a
``torch.Generator`` seeded by ``(s, e)``; every process computes the same permutation without
communicating. The permutation is cut into ``N // B`` global batches of ``B`` samples (the last
``N % B`` samples of the permutation are dropped, as BYOL trains on full batches; they differ
from epoch to epoch). Rank ``r`` of ``W`` takes the ``r``-th contiguous slice of ``B / W``
samples of each global batch, so the ranks' samples are disjoint and together form exactly the
global batch a single process would have used.

A run resumes inside an epoch by asking for the batches from ``start_batch`` on; these are the
same batches the uninterrupted epoch would have produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler


def _positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed from ``(seed, epoch)``; hashed, so nearby pairs do not collide
    and the value is the same on every platform."""
    digest = hashlib.sha256(f"byol-epoch-order:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class EpochSampler(Sampler[int]):
    """Epoch permutations cut into global batches, sharded over ranks.

    Cached (batched) path: ``for indices in sampler.batches(epoch, start_batch)`` gives this
    rank's (B / W,) int64 index tensors. DataLoader path: ``sampler.set_epoch(epoch,
    start_batch)`` then use it as ``DataLoader(..., sampler=sampler,
    batch_size=sampler.local_batch_size)``; the loader then forms the same batches.

    ``num_samples``: N. ``global_batch_size``: B, over all ranks (divisible by
    ``world_size``, at most N). ``shuffle=False`` keeps dataset order (evaluation, debugging).
    """

    def __init__(
        self,
        num_samples: int,
        global_batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        _positive_int("num_samples", num_samples)
        _positive_int("global_batch_size", global_batch_size)
        _positive_int("world_size", world_size)
        _positive_int("rank", rank, minimum=0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed={seed!r} must be an integer")
        if rank >= world_size:
            raise ValueError(f"rank={rank} must be below world_size={world_size}")
        if global_batch_size % world_size:
            raise ValueError(
                f"global batch size {global_batch_size} is not divisible by world_size="
                f"{world_size}; pick a batch size that is a multiple of the number of processes"
            )
        if global_batch_size > num_samples:
            raise ValueError(
                f"global batch size {global_batch_size} is larger than the dataset "
                f"({num_samples} images), so no full batch exists; lower the batch size"
            )
        self.num_samples = num_samples
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0

    @property
    def local_batch_size(self) -> int:
        """Samples per batch on this rank, ``B / W``."""
        return self.global_batch_size // self.world_size

    @property
    def batches_per_epoch(self) -> int:
        """Full global batches per epoch, ``N // B``."""
        return self.num_samples // self.global_batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of epoch ``epoch``: (N,) int64, identical on every rank."""
        _positive_int("epoch", epoch, minimum=0)
        if not self.shuffle:
            return torch.arange(self.num_samples, dtype=torch.int64)
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self.num_samples, generator=generator, dtype=torch.int64)

    def _check_start(self, start_batch: int) -> None:
        _positive_int("start_batch", start_batch, minimum=0)
        if start_batch > self.batches_per_epoch:
            raise ValueError(
                f"start_batch={start_batch} is past the end of the epoch "
                f"({self.batches_per_epoch} batches); resume with a smaller position"
            )

    def _local_order(self, epoch: int, start_batch: int) -> torch.Tensor:
        """This rank's indices from ``start_batch`` on: (batches left, B / W) int64."""
        self._check_start(start_batch)
        used = self.batches_per_epoch * self.global_batch_size
        grid = self.permutation(epoch)[:used].view(self.batches_per_epoch, self.world_size, -1)
        return grid[start_batch:, self.rank]

    def batches(self, epoch: int, start_batch: int = 0) -> Iterator[torch.Tensor]:
        """This rank's batches of ``epoch`` from ``start_batch`` on, each (B / W,) int64."""
        yield from self._local_order(epoch, start_batch)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose what ``iter(sampler)`` yields (as ``DistributedSampler.set_epoch``)."""
        _positive_int("epoch", epoch, minimum=0)
        self._check_start(start_batch)
        self.epoch = epoch
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        yield from self._local_order(self.epoch, self.start_batch).reshape(-1).tolist()

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.local_batch_size

    def state_dict(self) -> dict[str, Any]:
        """Position and settings, for checkpoints."""
        return {
            "epoch": self.epoch,
            "start_batch": self.start_batch,
            "seed": self.seed,
            "num_samples": self.num_samples,
            "global_batch_size": self.global_batch_size,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position; raises ``ValueError`` if the checkpoint's order differs."""
        for key in ("seed", "num_samples", "global_batch_size", "shuffle"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"checkpoint sampler has {key}={state.get(key)!r} but this run has "
                    f"{getattr(self, key)!r}; resume with the same data and batch size"
                )
        self.set_epoch(int(state["epoch"]), int(state["start_batch"]))
