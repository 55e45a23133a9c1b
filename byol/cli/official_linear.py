"""``byol eval linear --protocol official``: data plumbing for the official linear evaluation.

Training batches are random resized crops + horizontal flips of the uint8 cache, made on the
device by :class:`~byol.augment.BatchedView` with every colour operation switched off, which is
the official evaluation's augmentation ([official] ``configs/eval.py:29-45``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from byol.augment import BatchedView
from byol.config import Config, ViewConfig
from byol.data.sampler import EpochSampler
from byol.eval.batches import eval_batches
from byol.eval.linear import linear_eval_official
from byol.eval.splits import load_labelled_splits


def run_official_linear(
    encoder: nn.Module, config: Config, source: str, arguments: argparse.Namespace
) -> tuple[float, float]:
    device = next(encoder.parameters()).device
    train, test = load_labelled_splits(config, source)
    batch_size = min(arguments.batch_size, len(train))
    sampler = EpochSampler(len(train), batch_size, seed=config.train.seed)
    crop_and_flip = BatchedView(
        ViewConfig(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0),
        config.augment.image_size,
        config.augment.mean,
        config.augment.std,
    ).to(device)
    images = train.images.to(device) if device.type == "cuda" else train.images
    generator = torch.Generator(device=device).manual_seed(config.train.seed)

    def train_batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        for indices in sampler.batches(epoch):
            batch = images[indices.to(images.device)].to(device, non_blocking=True)
            yield crop_and_flip(batch, generator), train.labels[indices]

    with torch.no_grad():
        feature_dim = encoder(
            next(eval_batches(test.images[:2], test.labels[:2], config.augment, 2, device))[0]
        ).shape[1]
    result = linear_eval_official(
        encoder,
        train_batches,
        eval_batches(test.images, test.labels, config.augment, arguments.batch_size, device),
        feature_dim=feature_dim,
        num_classes=len(train.classes),
        batch_size=batch_size,
        steps_per_epoch=sampler.batches_per_epoch,
        epochs=arguments.epochs,
        device=device,
        progress=True,
    )
    return result.top1, result.top5
