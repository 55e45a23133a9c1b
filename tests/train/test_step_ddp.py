"""Two real DDP processes (gloo) stay exact replicas: online weights, BatchNorm statistics and
the EMA target, with gradient accumulation and synchronised BatchNorm."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from byol.config import OptimConfig
from byol.distributed import convert_sync_batchnorm
from byol.model import BYOL
from byol.optim import build_optimizer
from byol.train.step import StepHooks, training_step
from tests.helpers import tiny_byol

WORLD = 2


def _conv_batchnorm_backbone() -> nn.Module:
    """(B, 3, H, W) -> (B, 4) through one convolution and BatchNorm (synchronised under DDP)."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def _tiny_byol() -> BYOL:
    return tiny_byol(
        _conv_batchnorm_backbone,
        feature_dim=4,
        projector_hidden_dim=16,
        projection_dim=8,
        predictor_hidden_dim=16,
    )


def _worker(rank: int, store: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        model = convert_sync_batchnorm(_tiny_byol(), "cpu")
        assert isinstance(model, BYOL)
        replica = DistributedDataParallel(model)
        optimizer = build_optimizer(model.online, OptimConfig(batch_size=16))

        def no_backward_sync(skip: bool) -> AbstractContextManager[Any]:
            return replica.no_sync() if skip else nullcontext()

        generator = torch.Generator().manual_seed(100 + rank)  # each rank its own images
        for _ in range(3):
            view_1, view_2 = torch.randn(2, 8, 3, 6, 6, generator=generator)
            training_step(
                model,
                optimizer,
                (view_1, view_2),
                learning_rate=0.5,
                tau=0.9,
                hooks=StepHooks(
                    forward=replica, accumulation_steps=2, no_backward_sync=no_backward_sync
                ),
            )
        state = model.state_dict()
        flat = torch.cat([tensor.double().reshape(-1) for tensor in state.values()])
        gathered = [torch.empty_like(flat) for _ in range(WORLD)]
        dist.all_gather(gathered, flat)
        assert torch.equal(gathered[0], gathered[1]), "the replicas diverged"
        # The target moved away from its initial copy (the check above is not vacuous).
        initial = _tiny_byol().target.projector[0].weight
        assert not torch.allclose(model.target.projector[0].weight, initial)
    finally:
        dist.destroy_process_group()


def test_replicas_stay_identical_with_accumulation_and_global_batchnorm(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(tmp_path / "store",), nprocs=WORLD)
