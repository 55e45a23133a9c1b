"""The published linear evaluation: a linear layer trained with SGD on a frozen encoder.

[official] ``configs/eval.py:29-45`` and [paper] Appendix C.1: the encoder is frozen with
BatchNorm in eval mode; the images are random resized crops and horizontal flips made on the
fly; SGD with Nesterov momentum 0.9, lr 0.2 x B / 256 with cosine decay and no warm-up, no
weight decay, 80 epochs (:class:`byol.config.LinearEvalConfig`).

:func:`linear_eval_official` is the training loop over any batches;
:func:`linear_eval_official_on_splits` feeds it the uint8 caches of a labelled data set, with
the crops and flips made on the device by :class:`~byol.augment.BatchedView` with every colour
operation switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from byol.augment import BatchedView
from byol.backbones import declared_feature_dim
from byol.config import AugmentConfig, Config, LinearEvalConfig, ViewConfig
from byol.data.cache import ImageCache
from byol.data.sampler import EpochSampler
from byol.eval.batches import eval_batches
from byol.eval.features import autocast_context, eval_mode, extract_features
from byol.eval.linear import LinearClassifier, LinearProbeResult, score_classifier
from byol.schedules import learning_rate

# ``epoch -> (images (B, 3, S, S), labels (B,))`` batches of that epoch, augmented.
TrainBatches = Callable[[int], Iterable[tuple[Tensor, Tensor]]]


def linear_eval_official(
    encoder: nn.Module,
    train_batches: TrainBatches,
    test_batches: Iterable[tuple[Tensor, Tensor]],
    *,
    feature_dim: int,
    num_classes: int,
    batch_size: int,
    steps_per_epoch: int,
    settings: LinearEvalConfig | None = None,
    device: torch.device | str | None = None,
    precision: str = "32-true",
    progress: bool = False,
) -> LinearProbeResult:
    """Train a linear layer on the frozen ``encoder``'s features, then score it on the test split.

    lr = ``settings.base_learning_rate`` x batch_size / 256, decayed by a cosine to 0 without
    warm-up (:func:`byol.schedules.learning_rate`); the paper used batch 1024. The encoder stays
    in eval mode (BatchNorm running statistics, no updates) and runs without gradients; only
    the linear layer learns.

    Args:
        encoder: (B, C, H, W) -> (B, feature_dim), already on ``device``.
        train_batches: ``epoch -> iterable of (images, labels)``, called once per epoch,
            yielding augmented batches.
        test_batches: unaugmented (centre-cropped) test ``(images, labels)``.
        feature_dim: D of the encoder output.
        num_classes: C.
        batch_size: global batch size B of the training batches, for the lr scaling.
        steps_per_epoch: batches per epoch, for the cosine schedule.
        settings: epochs and SGD settings; None: the official ones.
        device: defaults to the encoder's device.
        precision: autocast mode of the encoder forward, see :func:`extract_features`.
        progress: show a per-epoch progress bar.

    Returns:
        :class:`LinearProbeResult` (test top-1/top-5, classifier with identity standardisation,
        ``settings.weight_decay``, empty ``validation_top1``).
    """
    settings = settings or LinearEvalConfig()
    _check_positive(
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        epochs=settings.epochs,
        feature_dim=feature_dim,
    )
    device = _device_of(encoder) if device is None else torch.device(device)
    classifier = LinearClassifier(feature_dim, num_classes).to(device)
    # Small initial logits, as is usual for linear probes (the protocol does not say).
    nn.init.normal_(classifier.linear.weight, std=0.01)
    nn.init.zeros_(classifier.linear.bias)
    with eval_mode(encoder):
        _train_linear_layer(
            encoder,
            classifier.linear,
            train_batches,
            settings,
            _lr_schedule(settings, batch_size, steps_per_epoch),
            device,
            precision,
            progress,
        )
    test = extract_features(
        encoder,
        test_batches,
        device,
        precision=precision,
        progress=progress,
        description="linear eval test",
        output_device=device,
    )
    top1, top5 = score_classifier(classifier.eval(), test.features, test.labels)
    return LinearProbeResult(top1, top5, classifier.cpu(), settings.weight_decay, {})


def _train_linear_layer(
    encoder: nn.Module,
    linear: nn.Linear,
    train_batches: TrainBatches,
    settings: LinearEvalConfig,
    schedule: Callable[[int], float],
    device: torch.device,
    precision: str,
    progress: bool,
) -> None:
    """``settings.epochs`` epochs of SGD on ``linear`` over the frozen ``encoder``'s features;
    the learning rate of step s (counted over all epochs) is ``schedule(s)``."""
    optimizer = torch.optim.SGD(
        linear.parameters(),
        lr=0.0,
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        weight_decay=settings.weight_decay,
    )
    step = 0
    for epoch in range(settings.epochs):
        batches = train_batches(epoch)
        if progress:
            batches = tqdm(batches, desc=f"linear eval {epoch + 1}/{settings.epochs}", leave=False)
        for images, labels in batches:
            for group in optimizer.param_groups:
                group["lr"] = schedule(step)
            with torch.no_grad(), autocast_context(device, precision):
                features = torch.flatten(encoder(images.to(device, non_blocking=True)), 1)
            loss = F.cross_entropy(linear(features.float()), labels.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1


def _lr_schedule(
    settings: LinearEvalConfig, batch_size: int, steps_per_epoch: int
) -> Callable[[int], float]:
    """Step -> lr: base x batch_size / 256, cosine to 0 over all steps, no warm-up."""
    total_steps = settings.epochs * steps_per_epoch

    def schedule(step: int) -> float:
        return learning_rate(step, total_steps, 0, settings.base_learning_rate, batch_size)

    return schedule


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name}={value} must be at least 1")


def _device_of(encoder: nn.Module) -> torch.device:
    """The device of the encoder's first parameter; CPU for an encoder without parameters."""
    first = next(encoder.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def linear_eval_official_on_splits(
    encoder: nn.Module,
    splits: tuple[ImageCache, ImageCache],
    config: Config,
    *,
    settings: LinearEvalConfig | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> LinearProbeResult:
    """:func:`linear_eval_official` of ``encoder`` on labelled (train, test) uint8 caches.

    The feature size is the one the encoder declares
    (:func:`~byol.backbones.declared_feature_dim`). Training batches are crops and flips of the
    train split (:func:`crop_and_flip`), drawn by an :class:`~byol.data.sampler.EpochSampler`
    seeded with ``config.train.seed``; the test split is encoded unaugmented
    (:func:`~byol.eval.batches.eval_batches`). ``batch_size`` (default
    ``config.monitor.eval_batch_size``) is the SGD batch, at most the train split's size, and
    the encoding batch of the test split.
    """
    train, test = splits
    batch_size = config.monitor.eval_batch_size if batch_size is None else batch_size
    device = _device_of(encoder)
    sampler = EpochSampler(len(train), min(batch_size, len(train)), seed=config.train.seed)
    view = crop_and_flip(config.augment).to(device)
    return linear_eval_official(
        encoder,
        augmented_batches(train, sampler, view, device, config.train.seed),
        eval_batches(test.images, test.labels, config.augment, batch_size, device),
        feature_dim=declared_feature_dim(encoder),
        num_classes=len(train.classes),
        batch_size=sampler.global_batch_size,
        steps_per_epoch=sampler.batches_per_epoch,
        settings=settings,
        device=device,
        progress=progress,
    )


def crop_and_flip(augment: AugmentConfig) -> BatchedView:
    """The official evaluation's training augmentation, uint8 (B, 3, H, W) -> normalised float
    (B, 3, S, S): random resized crop and horizontal flip with ``augment``'s size and
    normalisation, every colour operation off ([official] ``configs/eval.py:29-45``)."""
    no_colour = ViewConfig(
        color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0
    )
    return BatchedView(no_colour, augment.image_size, augment.mean, augment.std)


def augmented_batches(
    cache: ImageCache, sampler: EpochSampler, view: BatchedView, device: torch.device, seed: int
) -> TrainBatches:
    """``epoch -> batches`` of ``view(images)`` (B, 3, S, S) on ``device`` and their labels
    (B,) on CPU, in ``sampler``'s order; the augmentation draws from one generator seeded with
    ``seed``. The uint8 cache is moved to a CUDA device once, here."""
    images = cache.images.to(device) if device.type == "cuda" else cache.images
    generator = torch.Generator(device=device).manual_seed(seed)

    def batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        for indices in sampler.batches(epoch):
            batch = images[indices.to(images.device)].to(device, non_blocking=True)
            yield view(batch, generator), cache.labels[indices]

    return batches
