"""Linear evaluation of frozen representations.

Two protocols:

* :func:`linear_probe` (fast default): multinomial logistic regression on cached features
  (from :func:`byol.eval.features.extract_features`), standardised with the training mean and
  std, fitted full-batch with L-BFGS; the L2 penalty is chosen on a held-out 10% of the training
  split and the classifier refitted on all of it. Seconds on a CPU for 50k x 512 features. Not
  the paper's number: no augmentation, and the penalty is tuned.
* :func:`byol.eval.linear_official.linear_eval_official`: the published protocol, [official]
  ``configs/eval.py:29-45`` and [paper] Appendix C.1: frozen encoder, crops and flips on the
  fly, SGD for 80 epochs.

Both return a :class:`LinearClassifier` (standardisation + ``nn.Linear``) that
:func:`save_linear_classifier` writes as safetensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn

from byol.atomic import write_bytes
from byol.eval.knn import topk_accuracy

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


def score_classifier(
    classifier: nn.Module, features: Tensor, labels: Tensor
) -> tuple[float, float]:
    """Top-1 and top-5 accuracy of ``classifier`` on features (N, D) with labels (N,)."""
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

    chosen, validation_top1 = _choose_weight_decay(
        train_features,
        train_labels,
        num_classes,
        weight_decays,
        validation_fraction=validation_fraction,
        max_iterations=max_iterations,
        seed=seed,
    )
    classifier = fit_logistic_regression(
        train_features, train_labels, num_classes, chosen, max_iterations=max_iterations
    )
    top1, top5 = score_classifier(classifier, test_features.to(device), test_labels)
    return LinearProbeResult(top1, top5, classifier.cpu(), chosen, validation_top1)


def _choose_weight_decay(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight_decays: Sequence[float],
    *,
    validation_fraction: float,
    max_iterations: int,
    seed: int,
) -> tuple[float, dict[float, float]]:
    """The penalty of best held-out top-1 (see :func:`linear_probe`) and the top-1 of each;
    a single candidate is returned unscored."""
    if len(weight_decays) == 1:
        return float(weight_decays[0]), {}
    device = features.device
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(features.shape[0], generator=generator).to(device)
    held_out = max(1, round(validation_fraction * features.shape[0]))
    fit_rows, validation_rows = order[held_out:], order[:held_out]
    validation_top1: dict[float, float] = {}
    previous: LinearClassifier | None = None
    for weight_decay in sorted((float(w) for w in weight_decays), reverse=True):
        previous = fit_logistic_regression(
            features[fit_rows],
            labels[fit_rows],
            num_classes,
            weight_decay,
            max_iterations=max_iterations,
            initial=previous,
        )
        validation_top1[weight_decay], _ = score_classifier(
            previous, features[validation_rows], labels[validation_rows]
        )
    # Sorted strongest first, so max() keeps the stronger penalty among equals.
    return max(validation_top1, key=lambda w: validation_top1[w]), validation_top1


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
