"""Fine-tuning: the whole encoder and a linear head trained together on labelled images.

[paper] Section 4.2 (Table 2) fine-tunes the pre-trained encoder with a linear classifier on
1% and 10% of ImageNet's labels; Appendix C.2 and D.3 train both with SGD and Nesterov
momentum on random crops and flips. The recipe and where each default comes from are in
:class:`~byol.downstream.finetune_config.FinetuneConfig`.

The hot loop is batched on the device: the uint8 training cache is gathered batch by batch,
each image gets its own random resized crop and flip (:meth:`byol.augment.BatchedView.
sample_params` draws the boxes, :func:`byol.augment.resample.resized_crop` applies them, with
colour augmentation off), and the loss is summed on the device; the host reads it once per
epoch, for the progress line.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import SGD
from tqdm.auto import tqdm

from byol.augment.batched import BatchedView
from byol.augment.resample import resized_crop
from byol.config import AugmentConfig, ViewConfig
from byol.data.sampler import EpochSampler
from byol.downstream.finetune_config import FinetuneConfig
from byol.eval.batches import eval_batches
from byol.eval.features import autocast_context, extract_features
from byol.eval.knn import topk_accuracy
from byol.optim.factory import parameter_groups
from byol.schedules import learning_rate
from byol.train.progress import progress_lines_wanted

# Training caches up to this size move to the accelerator whole; larger ones stay in host
# memory and travel batch by batch.
DEVICE_CACHE_LIMIT_BYTES = 4 * 1024**3


class FinetuneClassifier(nn.Module):
    """``head(encoder(images))``: normalised images (B, 3, S, S) -> logits (B, K).

    Args:
        encoder: images -> pooled features (B, D) (trailing dimensions are flattened).
        feature_dim: D.
        num_classes: K.
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        if feature_dim < 1 or num_classes < 2:
            raise ValueError(
                f"feature_dim={feature_dim} must be >= 1 and num_classes={num_classes} >= 2 "
                "(a classifier needs two classes)"
            )
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, num_classes)
        # Small initial logits, as the linear evaluation starts (byol.eval.linear).
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(torch.flatten(self.encoder(images), 1))


def optimizer_groups(
    classifier: FinetuneClassifier, weight_decay: float, head_lr_multiplier: float
) -> list[dict[str, Any]]:
    """SGD parameter groups: backbone and head, each split into decayed weights and the
    biases and normalisation parameters that get no weight decay (the pre-training's
    exclusions, :func:`byol.optim.factory.parameter_groups`).

    Each group carries ``lr_scale``: 1 for the backbone, ``head_lr_multiplier`` for the head;
    :func:`set_learning_rate` multiplies the scheduled rate by it. ``name`` says which group.
    """
    groups = []
    for part, scale in (("backbone", 1.0), ("head", head_lr_multiplier)):
        module = classifier.encoder if part == "backbone" else classifier.head
        decayed, excluded = parameter_groups(module, weight_decay)
        for group, kind in ((decayed, "decayed"), (excluded, "excluded")):
            group.pop("lars_adaptation")
            if group["params"]:
                groups.append({**group, "lr_scale": scale, "name": f"{part}/{kind}"})
    return groups


def build_optimizer(classifier: FinetuneClassifier, config: FinetuneConfig, image_size: int) -> SGD:
    """SGD (momentum, Nesterov) over :func:`optimizer_groups`; rates are set every step."""
    groups = optimizer_groups(
        classifier, config.resolved_weight_decay(image_size), config.head_lr_multiplier
    )
    return SGD(groups, lr=0.0, momentum=config.momentum, nesterov=config.nesterov)


def set_learning_rate(optimizer: torch.optim.Optimizer, backbone_rate: float) -> None:
    """The backbone's rate times each group's ``lr_scale`` (the head's is higher)."""
    for group in optimizer.param_groups:
        group["lr"] = backbone_rate * group["lr_scale"]


@dataclass
class FinetuneOutcome:
    """A finished fine-tuning run.

    ``classifier``: the trained network (eval mode, on the training device). ``steps``:
    optimiser steps taken. ``batch_size``: images per step. ``epoch_losses``: mean training
    loss of each epoch.
    """

    classifier: FinetuneClassifier
    steps: int
    batch_size: int
    epoch_losses: list[float]


class CropFlip:
    """Random resized crop + horizontal flip of uint8 batches on their device: (B, 3, H, W)
    uint8 -> (B, 3, S, S) float32 normalised, one box and one flip per image."""

    def __init__(
        self, config: FinetuneConfig, augment: AugmentConfig, device: torch.device
    ) -> None:
        view = ViewConfig(
            crop_scale_min=config.crop_scale_min,
            crop_scale_max=config.crop_scale_max,
            flip_prob=config.flip_prob,
            color_jitter_prob=0.0,
            grayscale_prob=0.0,
            blur_prob=0.0,
            solarize_prob=0.0,
        )
        self.sampler = BatchedView(view, augment.image_size, augment.mean, augment.std)
        self.image_size = augment.image_size
        # On the device once, so no step copies them from the host.
        self.mean = torch.tensor(augment.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(augment.std, device=device).view(1, 3, 1, 1)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        batch, _, height, width = images.shape
        params = self.sampler.sample_params(batch, height, width, images.device, generator)
        crops = resized_crop(
            images,
            params.crop_top,
            params.crop_left,
            params.crop_height,
            params.crop_width,
            self.image_size,
            flip=params.flip,
            value_scale=1.0 / 255.0,
        ).clamp_(0.0, 1.0)
        return (crops - self.mean) / self.std


def finetune(
    classifier: FinetuneClassifier,
    images: Tensor,
    labels: Tensor,
    config: FinetuneConfig,
    augment: AugmentConfig,
    device: torch.device,
    *,
    progress: bool = False,
) -> FinetuneOutcome:
    """Train ``classifier`` (encoder and head, BatchNorm in training mode) on labelled images.

    Args:
        classifier: the network, on ``device``.
        images: uint8 (N, 3, H, W) training images, any side (crops are resized to
            ``augment.image_size``).
        labels: int64 (N,) class indices.
        config: the recipe (checked here).
        augment: ``image_size`` and the normalisation ``mean``/``std`` of the encoder.
        device: where to train.
        progress: a bar on a terminal, one line per epoch elsewhere (stderr).

    Returns:
        :class:`FinetuneOutcome` with the classifier in eval mode.
    """
    config.check()
    if images.shape[0] < 2:
        raise ValueError(
            f"fine-tuning needs at least 2 training images (BatchNorm), got {images.shape[0]}; "
            "use a larger --label-fraction or --labels-per-class"
        )
    batch_size = min(config.batch_size, int(images.shape[0]))
    sampler = EpochSampler(int(images.shape[0]), batch_size, seed=config.seed)
    total_steps = config.epochs * sampler.batches_per_epoch
    warmup_steps = round(config.warmup_epochs * sampler.batches_per_epoch)
    optimizer = build_optimizer(classifier, config, augment.image_size)
    crop_flip = CropFlip(config, augment, device)
    fits = device.type != "cpu" and images.numel() <= DEVICE_CACHE_LIMIT_BYTES
    images = images.to(device) if fits else images
    labels = labels.to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    bar = _progress_bar(total_steps, progress)
    losses: list[float] = []
    step = 0
    classifier.train()
    for epoch in range(config.epochs):
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for indices in sampler.batches(epoch):
            set_learning_rate(
                optimizer,
                learning_rate(step, total_steps, warmup_steps, config.learning_rate, batch_size),
            )
            batch = images[indices.to(images.device)].to(device, non_blocking=True)
            views = crop_flip(batch, generator)
            with autocast_context(device, config.precision):
                logits = classifier(views)
            loss = F.cross_entropy(
                logits.float(), labels[indices.to(device)], label_smoothing=config.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            step += 1
            if bar is not None:
                bar.update(1)
        losses.append(float(loss_sum) / sampler.batches_per_epoch)  # one host read per epoch
        _report_epoch(bar, progress, epoch, config.epochs, losses[-1], optimizer, started)
        _check_finite(losses[-1], epoch)
    if bar is not None:
        bar.close()
    return FinetuneOutcome(classifier.eval(), step, batch_size, losses)


def _progress_bar(total_steps: int, progress: bool) -> Any:
    if not progress or progress_lines_wanted(progress):
        return None
    return tqdm(total=total_steps, desc="finetune", unit="step", leave=False)


def _report_epoch(
    bar: Any,
    progress: bool,
    epoch: int,
    epochs: int,
    loss: float,
    optimizer: torch.optim.Optimizer,
    started: float,
) -> None:
    rate = optimizer.param_groups[0]["lr"]
    if bar is not None:
        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss:.4f}")
    elif progress:
        seconds = time.perf_counter() - started
        print(
            f"finetune epoch {epoch + 1}/{epochs} loss {loss:.4f} backbone lr {rate:.3g} "
            f"({seconds:.1f} s)",
            file=sys.stderr,
            flush=True,
        )


def _check_finite(loss: float, epoch: int) -> None:
    if not math.isfinite(loss):
        raise ValueError(
            f"the fine-tuning loss became {loss} in epoch {epoch + 1}; lower --learning-rate "
            "(or --head-lr-multiplier)"
        )


def evaluate(
    classifier: nn.Module,
    images: Tensor,
    labels: Tensor,
    augment: AugmentConfig,
    batch_size: int,
    device: torch.device,
    precision: str = "32-true",
) -> tuple[float, float]:
    """Top-1 and top-5 (top-K when K < 5) of ``classifier`` on prepared test images.

    ``images``: uint8 (N, 3, H, W), resized to ``augment.image_size`` when their side differs
    (:func:`byol.eval.batches.eval_batches`); the classifier runs in eval mode.
    """
    logits = extract_features(
        classifier,
        eval_batches(images, labels, augment, batch_size, device),
        device,
        precision=precision,
        output_device=device,
    )
    top1, top5 = topk_accuracy(logits.features, logits.labels, (1, 5))
    return float(top1), float(top5)
