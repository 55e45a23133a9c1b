"""Linear evaluation of frozen representations.

Two protocols:

* :func:`linear_probe` (fast default): multinomial logistic regression on cached features
  (from :func:`byol.eval.features.extract_features`), standardised with the training mean and
  std, fitted full-batch with L-BFGS; the L2 penalty is chosen on a held-out 10% of the training
  split and the classifier refitted on all of it. Seconds on a CPU for 50k x 512 features. Not
  the paper's number: no augmentation, and the penalty is tuned.
* :func:`linear_eval_official`: the published protocol, [official] ``configs/eval.py:29-45``
  and [paper] Appendix C.1: frozen encoder with BatchNorm in eval mode, random resized crop and
  horizontal flip on the fly, SGD with Nesterov momentum 0.9, lr 0.2 x B / 256 with cosine decay
  and no warm-up, no weight decay, 80 epochs.

Both return a :class:`LinearClassifier` (standardisation + ``nn.Linear``) that
:func:`save_linear_classifier` writes as safetensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn
from tqdm.auto import tqdm

from byol.atomic import write_bytes
from byol.eval.features import autocast_context, eval_mode, extract_features
from byol.eval.knn import topk_accuracy
from byol.schedules import learning_rate

# L2 penalties tried by the fast probe (multiplying 0.5 * ||W||^2 next to the mean
# cross-entropy of standardised features): log-spaced, weak to strong.
DEFAULT_WEIGHT_DECAYS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
# Standard deviations below this are treated as constant features (divided by 1, not by ~0).
_MIN_STD = 1e-6


class LinearClassifier(nn.Module):
    """logits = W (x - mean) / std + b.

    Args:
        feature_dim: D.
        num_classes: C.

    Buffers ``mean`` and ``std`` (D,) hold the standardisation (0 and 1 for the official
    protocol); ``linear`` is an ``nn.Linear(D, C)``. Input (N, D), output logits (N, C).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        if feature_dim < 1 or num_classes < 2:
            raise ValueError(
                f"feature_dim={feature_dim} must be >= 1 and num_classes={num_classes} >= 2"
            )
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.linear = nn.Linear(feature_dim, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear((features.float() - self.mean) / self.std)


class LinearProbeResult(NamedTuple):
    """Outcome of a linear evaluation.

    Attributes:
        top1: test top-1 accuracy in [0, 1].
        top5: test top-5 accuracy in [0, 1] (top-C when C < 5).
        classifier: the fitted :class:`LinearClassifier`, on CPU, in eval mode.
        weight_decay: the L2 penalty used for the final fit.
        validation_top1: held-out top-1 per candidate penalty (empty when none was searched).
    """

    top1: float
    top5: float
    classifier: LinearClassifier
    weight_decay: float
    validation_top1: dict[float, float]


def _check_labelled(features: Tensor, labels: Tensor, name: str) -> None:
    if features.ndim != 2:
        raise ValueError(f"{name} features must be (N, D); got {tuple(features.shape)}")
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"{name} labels shape {tuple(labels.shape)} must be ({features.shape[0]},), "
            "one per feature row"
        )


def fit_logistic_regression(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight_decay: float,
    *,
    max_iterations: int = 200,
    initial: LinearClassifier | None = None,
) -> LinearClassifier:
    """Multinomial logistic regression on standardised features, full-batch L-BFGS.

    Minimises mean cross-entropy + 0.5 * weight_decay * ||W||^2 (bias not penalised), a convex
    problem, so the result does not depend on the initialisation beyond the stopping point.

    Args:
        features: float (N, D) on the device to train on.
        labels: int64 (N,) in [0, num_classes).
        num_classes: C.
        weight_decay: L2 penalty, >= 0.
        max_iterations: L-BFGS iterations (line-search evaluations excluded).
        initial: warm start; its weights are copied, its standardisation is replaced by the
            statistics of ``features``.

    Returns:
        A :class:`LinearClassifier` on ``features.device`` in eval mode.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay} must be >= 0")
    features = features.float()
    classifier = LinearClassifier(features.shape[1], num_classes).to(features.device)
    with torch.no_grad():
        classifier.mean.copy_(features.mean(dim=0))
        std = features.std(dim=0) if features.shape[0] > 1 else torch.ones_like(classifier.std)
        classifier.std.copy_(torch.where(std < _MIN_STD, torch.ones_like(std), std))
        if initial is None:
            classifier.linear.weight.zero_()
            classifier.linear.bias.zero_()
        else:
            classifier.linear.load_state_dict(initial.linear.state_dict())
    standardised = (features - classifier.mean) / classifier.std
    labels = labels.to(features.device, torch.int64)
    optimizer = torch.optim.LBFGS(
        classifier.linear.parameters(),
        lr=1.0,
        max_iter=max_iterations,
        history_size=10,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(classifier.linear(standardised), labels)
        loss = loss + 0.5 * weight_decay * classifier.linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return classifier.eval()


def _evaluate(classifier: nn.Module, features: Tensor, labels: Tensor) -> tuple[float, float]:
    with torch.inference_mode():
        logits = classifier(features)
    top1, top5 = topk_accuracy(logits, labels.to(logits.device), (1, 5))
    return float(top1), float(top5)


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    validation_fraction: float = 0.1,
    max_iterations: int = 200,
    num_classes: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> LinearProbeResult:
    """Fast linear evaluation on cached frozen features.

    Candidate penalties are fitted on a random (1 - ``validation_fraction``) of the training
    split, strongest first, each warm-started from the previous; the one with the best held-out
    top-1 (ties: the stronger penalty) is refitted on the whole training split and scored on the
    test split.

    Args:
        train_features: (N, D); train_labels: (N,) int.
        test_features: (M, D); test_labels: (M,) int.
        weight_decays: candidate L2 penalties; a single value skips the search.
        validation_fraction: held-out share of the training split for the search, in (0, 1).
        max_iterations: L-BFGS iterations per fit.
        num_classes: C; inferred as 1 + the largest label otherwise.
        seed: seed of the held-out split.
        device: where to fit (full batch: the features must fit there).

    Returns:
        :class:`LinearProbeResult` with the classifier on CPU.
    """
    _check_labelled(train_features, train_labels, "train")
    _check_labelled(test_features, test_labels, "test")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train dimension {train_features.shape[1]} differs from test dimension "
            f"{test_features.shape[1]}; extract both with the same encoder"
        )
    if not weight_decays:
        raise ValueError("weight_decays is empty; pass at least one L2 penalty, e.g. (1e-4,)")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be in (0, 1)")
    if train_features.shape[0] < 2 or test_features.shape[0] < 1:
        raise ValueError(
            f"need >= 2 training and >= 1 test rows; got {train_features.shape[0]} and "
            f"{test_features.shape[0]}"
        )
    device = torch.device(device)
    train_features = train_features.to(device, torch.float32)
    train_labels = train_labels.to(device, torch.int64)
    largest = int(torch.maximum(train_labels.max(), test_labels.max()))
    if int(torch.minimum(train_labels.min(), test_labels.min())) < 0:
        raise ValueError("labels must be class indices >= 0")
    if num_classes is None:
        num_classes = max(largest + 1, 2)
    elif largest >= num_classes:
        raise ValueError(f"found label {largest} but num_classes={num_classes}; pass more classes")

    validation_top1: dict[float, float] = {}
    chosen = float(weight_decays[0])
    if len(weight_decays) > 1:
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(train_features.shape[0], generator=generator).to(device)
        held_out = max(1, round(validation_fraction * train_features.shape[0]))
        fit_rows, validation_rows = order[held_out:], order[:held_out]
        previous: LinearClassifier | None = None
        for weight_decay in sorted((float(w) for w in weight_decays), reverse=True):
            previous = fit_logistic_regression(
                train_features[fit_rows],
                train_labels[fit_rows],
                num_classes,
                weight_decay,
                max_iterations=max_iterations,
                initial=previous,
            )
            validation_top1[weight_decay], _ = _evaluate(
                previous, train_features[validation_rows], train_labels[validation_rows]
            )
        # Sorted strongest first, so max() keeps the stronger penalty among equals.
        chosen = max(validation_top1, key=lambda w: validation_top1[w])
    classifier = fit_logistic_regression(
        train_features, train_labels, num_classes, chosen, max_iterations=max_iterations
    )
    top1, top5 = _evaluate(classifier, test_features.to(device), test_labels)
    return LinearProbeResult(top1, top5, classifier.cpu(), chosen, validation_top1)


def save_linear_classifier(
    classifier: LinearClassifier, path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write the classifier's weights and standardisation as safetensors; returns the path."""
    path = Path(path)
    tensors = {name: t.detach().cpu().contiguous() for name, t in classifier.state_dict().items()}
    data = save(tensors, metadata={"format": "byol.eval.LinearClassifier", **(metadata or {})})
    return write_bytes(path, data)  # atomically, with the umask's permissions


def load_linear_classifier(path: str | Path) -> LinearClassifier:
    """Read a classifier written by :func:`save_linear_classifier` (tensors only, no pickle)."""
    tensors = load_file(str(path))
    expected = {"mean", "std", "linear.weight", "linear.bias"}
    if set(tensors) != expected:
        raise ValueError(
            f"{path} holds tensors {sorted(tensors)}, not a LinearClassifier {sorted(expected)}; "
            "write it with save_linear_classifier"
        )
    num_classes, feature_dim = tensors["linear.weight"].shape
    classifier = LinearClassifier(feature_dim, num_classes)
    classifier.load_state_dict(tensors)
    return classifier.eval()


def linear_eval_transforms(
    image_size: int = 224,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
) -> tuple[Callable, Callable]:
    """torchvision transforms of the official linear evaluation, for PIL images.

    Training: random resized crop (scale 0.08-1, ratio 3/4-4/3, bicubic) and horizontal flip;
    test: resize to round(image_size * 256 / 224) then centre crop (the 32-pixel crop padding
    at 224 of [official] ``utils/dataset.py``). Both end with ToTensor and normalisation.

    Returns:
        (train_transform, test_transform).
    """
    from torchvision import transforms

    bicubic = transforms.InterpolationMode.BICUBIC
    normalise = [transforms.ToTensor(), transforms.Normalize(list(mean), list(std))]
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size, scale=(0.08, 1.0), interpolation=bicubic),
            transforms.RandomHorizontalFlip(),
            *normalise,
        ]
    )
    test = transforms.Compose(
        [
            transforms.Resize(round(image_size * 256 / 224), interpolation=bicubic),
            transforms.CenterCrop(image_size),
            *normalise,
        ]
    )
    return train, test


def linear_eval_official(
    encoder: nn.Module,
    train_loader_factory: Callable[[int], Iterable[tuple[Tensor, Tensor]]],
    test_batches: Iterable[tuple[Tensor, Tensor]],
    *,
    feature_dim: int,
    num_classes: int,
    batch_size: int,
    steps_per_epoch: int,
    epochs: int = 80,
    base_learning_rate: float = 0.2,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    precision: str = "32-true",
    progress: bool = False,
) -> LinearProbeResult:
    """The official linear evaluation: a linear layer on a frozen encoder, trained with SGD.

    Defaults from [official] ``configs/eval.py:29-45`` and [paper] Appendix C.1: 80 epochs,
    SGD momentum 0.9 with Nesterov, lr = 0.2 x batch_size / 256 decayed by a cosine to 0 without
    warm-up (:func:`byol.schedules.learning_rate`), no weight decay; the paper used batch 1024.
    The encoder stays in eval mode (BatchNorm running statistics, no updates) and runs without
    gradients; only the linear layer learns.

    Args:
        encoder: (B, C, H, W) -> (B, feature_dim), already on ``device``.
        train_loader_factory: ``epoch -> iterable of (images, labels)``, called once per epoch
            (so the caller can ``sampler.set_epoch(epoch)``), yielding augmented batches, e.g.
            a DataLoader over a dataset using :func:`linear_eval_transforms`'s training
            transform.
        test_batches: unaugmented (centre-cropped) test ``(images, labels)``.
        feature_dim: D of the encoder output.
        num_classes: C.
        batch_size: global batch size B of the training loader, for the lr scaling.
        steps_per_epoch: batches per epoch (``len(loader)``), for the cosine schedule.
        epochs: passes over the training data.
        base_learning_rate, momentum, nesterov, weight_decay: the SGD settings.
        device: defaults to the encoder's device.
        precision: autocast mode of the encoder forward, see :func:`extract_features`.
        progress: show a per-epoch progress bar.

    Returns:
        :class:`LinearProbeResult` (test top-1/top-5, classifier with identity standardisation,
        ``weight_decay``, empty ``validation_top1``).
    """
    for name, value in (
        ("batch_size", batch_size),
        ("steps_per_epoch", steps_per_epoch),
        ("epochs", epochs),
        ("feature_dim", feature_dim),
    ):
        if value < 1:
            raise ValueError(f"{name}={value} must be at least 1")
    if device is None:
        first = next(encoder.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    classifier = LinearClassifier(feature_dim, num_classes).to(device)
    # Small initial logits, as is usual for linear probes (the protocol does not say).
    nn.init.normal_(classifier.linear.weight, std=0.01)
    nn.init.zeros_(classifier.linear.bias)
    optimizer = torch.optim.SGD(
        classifier.linear.parameters(),
        lr=0.0,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )
    total_steps = epochs * steps_per_epoch
    step = 0
    with eval_mode(encoder):
        for epoch in range(epochs):
            batches = train_loader_factory(epoch)
            if progress:
                batches = tqdm(batches, desc=f"linear eval {epoch + 1}/{epochs}", leave=False)
            for images, labels in batches:
                lr = learning_rate(step, total_steps, 0, base_learning_rate, batch_size)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.no_grad(), autocast_context(device, precision):
                    features = torch.flatten(encoder(images.to(device, non_blocking=True)), 1)
                logits = classifier.linear(features.float())
                loss = F.cross_entropy(logits, labels.to(device, non_blocking=True))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
    test = extract_features(
        encoder,
        test_batches,
        device,
        precision=precision,
        progress=progress,
        description="linear eval test",
        output_device=device,
    )
    classifier.eval()
    top1, top5 = _evaluate(classifier, test.features, test.labels)
    return LinearProbeResult(top1, top5, classifier.cpu(), weight_decay, {})
