"""GlobalBatchNorm in two real gloo processes equals BatchNorm over the concatenated batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from byol.distributed import GlobalBatchNorm, convert_sync_batchnorm

WORLD = 2
# Uneven shares on purpose: the global count is all-reduced, not assumed.
SPLIT = (3, 5)


def _init(rank: int, store: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)


def _batchnorm_worker(rank: int, store: Path) -> None:
    _init(rank, store)
    try:
        # The reference is BatchNorm in float64. The last case has a mean far above its spread,
        # where E[x^2] - E[x]^2 in float32 would be off by 1e-3 (the tolerance is 1e-4).
        for shape, mean, tolerance in (
            ((8, 4), 3.0, 1e-5),
            ((8, 3, 5, 5), 3.0, 1e-5),
            ((8, 3, 4, 4), 1000.0, 1e-4),
        ):
            generator = torch.Generator().manual_seed(0)
            inputs = mean + 2.0 * torch.randn(*shape, generator=generator)
            weights = torch.randn(*shape, generator=generator)  # d loss / d output
            layer_type = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
            reference = layer_type(shape[1], dtype=torch.float64)
            with torch.no_grad():
                reference.weight.copy_(torch.rand(shape[1], generator=generator) + 0.5)
                reference.bias.copy_(torch.randn(shape[1], generator=generator))
            layer = convert_sync_batchnorm(layer_type(shape[1]), "cpu")
            assert isinstance(layer, GlobalBatchNorm)
            layer.load_state_dict(reference.state_dict())

            full = inputs.double().requires_grad_(True)
            expected = reference(full)
            (expected * weights).sum().backward()

            start = sum(SPLIT[:rank])
            rows = slice(start, start + SPLIT[rank])
            local = inputs[rows].clone().requires_grad_(True)
            output = layer(local)
            (output * weights[rows]).sum().backward()

            def close(
                actual: torch.Tensor, wanted: torch.Tensor, tolerance: float = tolerance
            ) -> None:
                torch.testing.assert_close(
                    actual.double(), wanted.detach(), atol=tolerance, rtol=1e-4
                )

            close(output, expected[rows])
            assert local.grad is not None and full.grad is not None
            close(local.grad, full.grad[rows])
            # Parameter gradients are partial sums per rank, as DDP would add them up.
            for name in ("weight", "bias"):
                grad = getattr(layer, name).grad.clone()
                dist.all_reduce(grad)
                close(grad, getattr(reference, name).grad)
            close(layer.running_mean, reference.running_mean)
            close(layer.running_var, reference.running_var)
            assert int(layer.num_batches_tracked) == int(reference.num_batches_tracked) == 1
            # Evaluation uses the (identical) running statistics, no communication.
            layer.eval()
            reference.eval()
            close(layer(inputs), reference(inputs.double()))
    finally:
        dist.destroy_process_group()


def test_global_batchnorm_equals_batchnorm_over_the_concatenated_batch(tmp_path: Path) -> None:
    mp.spawn(_batchnorm_worker, args=(tmp_path / "store",), nprocs=WORLD)


def test_conversion_keeps_tensors_and_state_dict_keys() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.BatchNorm1d(64))
    keys = list(model.state_dict())
    weight = model[1].weight
    converted = convert_sync_batchnorm(model, "cpu")
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[3], GlobalBatchNorm)
    assert converted[1].weight is weight
    assert list(converted.state_dict()) == keys


def test_single_process_is_plain_batchnorm() -> None:
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(3)
    layer = convert_sync_batchnorm(nn.BatchNorm2d(3), "cpu")
    inputs = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(layer(inputs), reference(inputs))
    torch.testing.assert_close(layer.running_var, reference.running_var)


def test_cuda_conversion_uses_torch_sync_batchnorm() -> None:
    converted = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(2)), "cuda")
    assert isinstance(converted[0], nn.SyncBatchNorm)


@pytest.mark.parametrize("bad", [torch.zeros(3)])
def test_rejects_inputs_without_channels(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="shape"):
        GlobalBatchNorm(3)(bad)
