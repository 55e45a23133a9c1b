"""BatchNorm over the global batch of a multi-process run, on any device.

BYOL normalises with statistics of the whole global batch ([official] ``configs/byol.py:47-56``
synchronises BatchNorm across replicas). ``torch.nn.SyncBatchNorm`` does that on CUDA only;
:class:`GlobalBatchNorm` does it with plain collectives, so CPU (gloo) runs, and the tests that
check a multi-process run against a single process, use the same statistics as the GPU path.
:func:`convert_sync_batchnorm` picks one or the other for a device type.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _distributed_world() -> int:
    """Number of processes of the default group; 1 when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of the processes' gradients.

    Each process's loss depends on the sum, so d(total loss)/d(local) is the all-reduced
    gradient. (``torch.distributed.nn.functional.all_reduce`` does the same, but recent torch
    deprecates it in favour of a private module.)
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def _gather_rows(local: Tensor) -> Tensor:
    """(W, K): row r is process r's ``local`` (K,), differentiably (an all-reduce of rows that
    are zero except this process's own, whose gradient reaches ``local``)."""
    world, rank = dist.get_world_size(), dist.get_rank()
    rows = [local.new_zeros(local.shape) for _ in range(world)]
    rows[rank] = local
    return _AllReduceSum.apply(torch.stack(rows))


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics cover the batches of all processes together.

    Input ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, as
    ``BatchNorm1d/2d/3d``. In training with more than one process, the processes exchange
    their per-channel count, mean and sum of squared deviations (one differentiable all-reduce
    per layer), normalise with the global mean and biased variance, and move the running
    statistics with the unbiased global variance, as BatchNorm over the concatenated batches.
    Otherwise (one process, or evaluation) it is plain BatchNorm. Parameters and buffers are
    those of BatchNorm, so state dicts are interchangeable.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an input of shape (N, C, ...), got {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or _distributed_world() == 1:
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = [1, channels] + [1] * (input.dim() - 2)
        x = input.float()
        # Per process: count, mean and sum of squared deviations (two passes, float64 sums),
        # gathered from all processes and combined exactly (Chan et al., 1979); this keeps the
        # variance accurate when the mean is large against the spread, where E[x^2] - E[x]^2
        # would cancel.
        count = x.numel() // channels
        local_mean = x.sum(dims, dtype=torch.float64) / count
        deviations = x - local_mean.float().view(shape)
        local_m2 = deviations.square().sum(dims, dtype=torch.float64)
        rows = _gather_rows(torch.cat([local_mean.new_full((1,), count), local_mean, local_m2]))
        counts, means, m2s = rows[:, :1], rows[:, 1 : channels + 1], rows[:, channels + 1 :]
        n = counts.sum()
        mean64 = (counts * means).sum(0) / n
        variance64 = (m2s.sum(0) + (counts * (means - mean64).square()).sum(0)) / n
        mean, variance = mean64.float(), variance64.float()
        running_mean, running_var = self.running_mean, self.running_var
        if self.track_running_stats and running_mean is not None and running_var is not None:
            with torch.no_grad():
                factor = self._running_stats_factor()
                # BatchNorm keeps the unbiased variance (Bessel's correction over all n values).
                unbiased = (variance64 * n / (n - 1).clamp(min=1.0)).float()
                running_mean.lerp_(mean.to(running_mean.dtype), factor)
                running_var.lerp_(unbiased.to(running_var.dtype), factor)
        scale = torch.rsqrt(variance + self.eps)
        output = (x - mean.view(shape)) * scale.view(shape)
        if self.weight is not None:
            output = output * self.weight.view(shape)
        if self.bias is not None:
            output = output + self.bias.view(shape)
        return output.to(input.dtype)

    def _running_stats_factor(self) -> float:
        """Count this batch and return BatchNorm's averaging factor for it."""
        tracked = self.num_batches_tracked
        if tracked is not None:
            tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(tracked) if tracked is not None else 0.0
        return self.momentum


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """Every BatchNorm layer of ``module`` normalising over the global batch.

    ``torch.nn.SyncBatchNorm`` (NCCL kernels) on ``cuda``, :class:`GlobalBatchNorm` elsewhere
    (torch's layer refuses CPU tensors). The layers keep their parameters, buffers and state
    dict keys. Returns ``module`` changed in place, or the new layer if it is one itself.
    """
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batchnorm(module)


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        # The same tensors: an optimiser or EMA built before the conversion still sees them.
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, _to_global_batchnorm(child))
    return module
