"""Gradient accumulation in the training step: k micro-batches, one optimiser and EMA step."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import pytest
import torch
from torch import nn

from byol.config import OptimConfig
from byol.model import BYOL
from byol.optim import build_optimizer
from byol.train.step import StepHooks, check_gradient_accumulation, training_step
from tests.helpers import tiny_byol


def _flat_linear_backbone() -> nn.Module:
    """(B, 3, 4, 4) -> (B, 8): a backbone without BatchNorm."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8))


def _tiny_byol() -> BYOL:
    return tiny_byol(
        _flat_linear_backbone,
        feature_dim=8,
        projector_hidden_dim=16,
        projection_dim=8,
        predictor_hidden_dim=16,
    )


def _train(model: BYOL, steps: int, accumulation_steps: int) -> list[float]:
    optimizer = build_optimizer(model.online, OptimConfig(batch_size=8))
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        view_1, view_2 = torch.randn(2, 8, 3, 4, 4, generator=generator)
        result = training_step(
            model,
            optimizer,
            (view_1, view_2),
            learning_rate=0.5,
            tau=0.9,
            hooks=StepHooks(accumulation_steps=accumulation_steps),
        )
        losses.append(float(result.output.loss.detach()))
    return losses


def _assert_same_weights(a: nn.Module, b: nn.Module, atol: float) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0, msg=name)


def test_accumulation_equals_the_full_batch_without_batch_statistics() -> None:
    # In eval mode BatchNorm applies fixed statistics, so the network treats images one by
    # one, as a network without BatchNorm: two half-batches must give the full-batch step.
    full, accumulated = _tiny_byol().eval(), _tiny_byol().eval()
    full_losses = _train(full, steps=3, accumulation_steps=1)
    accumulated_losses = _train(accumulated, steps=3, accumulation_steps=2)
    assert accumulated_losses == pytest.approx(full_losses, rel=1e-6)
    _assert_same_weights(full, accumulated, atol=1e-6)
    # The EMA ran once per step, not once per micro-batch.
    assert not torch.equal(full.target.projector[0].weight, _tiny_byol().target.projector[0].weight)


def test_accumulation_normalises_each_micro_batch_with_its_own_statistics() -> None:
    full, accumulated = _tiny_byol(), _tiny_byol()
    _train(full, steps=1, accumulation_steps=1)
    _train(accumulated, steps=1, accumulation_steps=2)
    difference = (full.online.projector[0].weight - accumulated.online.projector[0].weight).detach()
    assert float(difference.abs().max()) > 1e-4
    # BatchNorm counted a batch per view and micro-batch.
    assert int(full.online.projector[1].num_batches_tracked) == 2
    assert int(accumulated.online.projector[1].num_batches_tracked) == 4


def test_gradients_are_synchronised_only_in_the_last_micro_batch() -> None:
    model = _tiny_byol()
    calls: list[bool] = []

    def no_backward_sync(skip: bool) -> AbstractContextManager[None]:
        calls.append(skip)
        return nullcontext()

    optimizer = build_optimizer(model.online, OptimConfig(batch_size=8))
    view_1, view_2 = torch.randn(2, 8, 3, 4, 4)
    training_step(
        model,
        optimizer,
        (view_1, view_2),
        0.1,
        0.9,
        StepHooks(accumulation_steps=4, no_backward_sync=no_backward_sync),
    )
    assert calls == [True, True, True, False]


def test_batch_that_does_not_split_is_refused() -> None:
    with pytest.raises(ValueError, match="gradient_accumulation_steps=3"):
        check_gradient_accumulation(3, 8)
    with pytest.raises(ValueError, match="at least 1"):
        check_gradient_accumulation(0, 8)
