"""Frozen-encoder feature extraction for k-NN and linear evaluation.

The encoder runs in eval mode (BatchNorm uses its running statistics, as the frozen backbone of
[official] ``configs/eval.py:29-45`` does) under :func:`torch.inference_mode`; its training
flag is restored afterwards so the function can be called in the middle of a training run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from byol.precision import resolve_precision


class Features(NamedTuple):
    """Features of a labelled dataset.

    Attributes:
        features: float32, shape (N, D).
        labels: int64, shape (N,).
    """

    features: Tensor
    labels: Tensor


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """An autocast context for ``precision`` (``32-true`` gives a no-op context)."""
    resolved = resolve_precision(precision, device.type)
    if resolved == "32-true":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if resolved == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the block and restore each submodule's flag afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags:
            m.training = training


def extract_features(
    encoder: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    device: torch.device | str | None = None,
    *,
    precision: str = "32-true",
    progress: bool = False,
    description: str = "features",
    output_device: torch.device | str = "cpu",
) -> Features:
    """Encode every batch with a frozen encoder.

    Args:
        encoder: maps images (B, C, H, W) to features (B, D) (any trailing dimensions are
            flattened). Already on ``device``.
        batches: yields ``(images, labels)``; images (B, C, H, W) preprocessed as the encoder
            expects (e.g. normalised float), labels (B,) integer class indices.
        device: where the encoder runs; defaults to the device of the encoder's first parameter
            (CPU for a parameter-free module).
        precision: ``32-true``, ``bf16-mixed``, ``16-mixed`` or ``auto`` (autocast for the
            forward pass only; features are returned in float32).
        progress: show a tqdm progress bar.
        description: label of the progress bar.
        output_device: where the returned tensors live; CPU by default so a large bank does not
            occupy accelerator memory, the training device for monitoring without a round trip.

    Returns:
        :class:`Features` with features float32 (N, D) and labels int64 (N,) on
        ``output_device``, in the order of ``batches``.

    Raises:
        ValueError: ``batches`` is empty, or a batch's images and labels disagree in size.
    """
    if device is None:
        first = next(encoder.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    output_device = torch.device(output_device)
    features: list[Tensor] = []
    labels: list[Tensor] = []
    iterator: Iterable[tuple[Tensor, Tensor]] = batches
    if progress:
        iterator = tqdm(batches, desc=description, unit="batch", leave=False)
    with eval_mode(encoder), torch.inference_mode():
        for images, batch_labels in iterator:
            if images.shape[0] != batch_labels.shape[0]:
                raise ValueError(
                    f"a batch has {images.shape[0]} images but {batch_labels.shape[0]} labels; "
                    "the loader must yield (images, labels) pairs of equal length"
                )
            with autocast_context(device, precision):
                output = encoder(images.to(device, non_blocking=True))
            features.append(torch.flatten(output, 1).float().to(output_device))
            labels.append(batch_labels.to(output_device, dtype=torch.int64))
    if not features:
        raise ValueError("batches yielded nothing; pass a non-empty loader")
    # Concatenating outside inference mode turns the inference tensors into ordinary ones, which
    # autograd accepts as inputs (the linear probe trains on them).
    return Features(torch.cat(features), torch.cat(labels))
