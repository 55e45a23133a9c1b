"""Weighted k-nearest-neighbour classification of frozen features.

Protocol of Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", CVPR 2018 (Sec. 3.4), as used by DINO (Caron et al. 2021) and lightly's
benchmarks: L2-normalised features, cosine similarity, the k = 200 most similar bank items vote
for their class with weight exp(sim / T), T = 0.1 (the defaults of
:class:`byol.config.MonitorConfig`). Figures from other protocols (solo-learn's default is k = 20
with Euclidean distance) are not comparable.

Memory is bounded by chunking: queries are processed ``query_chunk_size`` at a time and, when
the bank is large, the bank ``bank_chunk_size`` rows at a time with a running top-k merge, so a
1M x 2048 bank never needs an N_query x N_bank similarity matrix.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Largest similarity block (query chunk x bank chunk) materialised at once: 2**27 float32 values
# = 512 MiB, comfortable on accelerators and on CPU hosts alike.
MAX_SIMILARITY_ELEMENTS = 2**27


class KNNResult(NamedTuple):
    """Outcome of a k-NN evaluation.

    Attributes:
        top1: fraction of queries whose highest-scoring class is the label, in [0, 1].
        top5: fraction whose label is among the 5 highest-scoring classes (among all classes
            when there are fewer than 5, which makes it 1.0).
        predictions: int64 (N_query,) on CPU, the top-1 class of each query.
        k: the number of neighbours used (``k`` clamped to the bank size).
    """

    top1: float
    top5: float
    predictions: Tensor
    k: int


def _check_hyperparameters(k: int, temperature: float) -> None:
    if k < 1:
        raise ValueError(f"k={k} must be at least 1; the protocol default is 200")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be positive; the protocol default is 0.1")


def _check_bank_and_queries(
    query_features: Tensor, bank_features: Tensor, bank_labels: Tensor
) -> None:
    """Raise ``ValueError`` unless the features are (Q, D) and (N, D), N >= 1, with N labels."""
    if query_features.ndim != 2 or bank_features.ndim != 2:
        raise ValueError(
            f"features must be 2-D (N, D); got query {tuple(query_features.shape)} and bank "
            f"{tuple(bank_features.shape)}"
        )
    if query_features.shape[1] != bank_features.shape[1]:
        raise ValueError(
            f"query dimension {query_features.shape[1]} differs from bank dimension "
            f"{bank_features.shape[1]}; extract both with the same encoder"
        )
    num_bank = bank_features.shape[0]
    if num_bank == 0:
        raise ValueError("the feature bank is empty; pass at least one labelled bank row")
    if bank_labels.shape != (num_bank,):
        raise ValueError(
            f"bank_labels shape {tuple(bank_labels.shape)} must be ({num_bank},), one per bank row"
        )


@torch.no_grad()
def knn_class_probabilities(
    query_features: Tensor,
    bank_features: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    *,
    k: int = 200,
    temperature: float = 0.1,
    query_chunk_size: int = 1024,
    bank_chunk_size: int | None = None,
) -> Tensor:
    """Weighted k-NN class probabilities; pure, batched, on the inputs' device, no host sync.

    For each query, the k bank rows of highest cosine similarity s_i vote with weight
    exp(s_i / T) for their label; the votes per class, divided by their sum, are returned (the
    normalisation does not change the ranking, and equals scikit-learn's ``predict_proba`` for
    the same weights). Weights are computed as exp((s_i - max_j s_j) / T), the same ratio without
    overflow for small T.

    Args:
        query_features: (Q, D), any float dtype; normalised here.
        bank_features: (N, D) on the same device; normalised here, chunk by chunk.
        bank_labels: int64 (N,), values in [0, num_classes).
        num_classes: C.
        k: neighbours per query; clamped to N.
        temperature: T of the weights.
        query_chunk_size: queries processed at once.
        bank_chunk_size: bank rows compared at once; None picks the whole bank when the block
            fits :data:`MAX_SIMILARITY_ELEMENTS`, else the largest chunk that does.

    Returns:
        float32 (Q, C), rows summing to 1.

    Raises:
        ValueError: mismatched shapes, an empty bank, or non-positive k, T or chunk sizes.
    """
    _check_hyperparameters(k, temperature)
    _check_bank_and_queries(query_features, bank_features, bank_labels)
    if query_chunk_size < 1 or (bank_chunk_size is not None and bank_chunk_size < 1):
        raise ValueError(
            f"chunk sizes must be positive; got query_chunk_size={query_chunk_size}, "
            f"bank_chunk_size={bank_chunk_size}"
        )
    num_bank = bank_features.shape[0]
    k = min(k, num_bank)
    if bank_chunk_size is None:
        bank_chunk_size = max(k, MAX_SIMILARITY_ELEMENTS // query_chunk_size)
    bank_chunk_size = min(bank_chunk_size, num_bank)
    bank_labels = bank_labels.to(query_features.device, torch.int64)

    # A bank compared in one block is normalised once; chunked banks are normalised chunk by
    # chunk (1 / query_chunk_size of the matmul cost) so no normalised copy of a huge bank exists.
    whole_bank = F.normalize(bank_features.float(), dim=1) if bank_chunk_size == num_bank else None
    probabilities: list[Tensor] = []
    for query_chunk in torch.split(query_features, query_chunk_size):
        queries = F.normalize(query_chunk.float(), dim=1)
        best_similarities: Tensor | None = None
        best_labels: Tensor | None = None
        for start in range(0, num_bank, bank_chunk_size):
            if whole_bank is not None:
                bank = whole_bank
            else:
                bank = F.normalize(bank_features[start : start + bank_chunk_size].float(), dim=1)
            similarities = queries @ bank.T  # (q, b)
            values, indices = similarities.topk(min(k, bank.shape[0]), dim=1)
            labels = bank_labels[start : start + bank_chunk_size][indices]
            if best_similarities is not None and best_labels is not None:
                # Running merge: the k best of (previous k best, this chunk's k best).
                values = torch.cat([best_similarities, values], dim=1)
                labels = torch.cat([best_labels, labels], dim=1)
                values, order = values.topk(min(k, values.shape[1]), dim=1)
                labels = labels.gather(1, order)
            best_similarities, best_labels = values, labels
        assert best_similarities is not None and best_labels is not None  # num_bank > 0
        weights = ((best_similarities - best_similarities[:, :1]) / temperature).exp()
        votes = torch.zeros(
            queries.shape[0], num_classes, device=queries.device, dtype=torch.float32
        )
        votes.scatter_add_(1, best_labels, weights)
        probabilities.append(votes / votes.sum(dim=1, keepdim=True))
    if not probabilities:
        return torch.zeros(0, num_classes, device=query_features.device)
    return torch.cat(probabilities)


def topk_accuracy(scores: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[Tensor]:
    """Fractions of rows whose label is among the ``k`` highest scores, for each k.

    Args:
        scores: (N, C).
        labels: int64 (N,).
        ks: each clamped to C.

    Returns:
        0-d float32 tensors on ``scores.device`` (no host sync), one per k.
    """
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"{scores.shape[0]} score rows but {labels.shape[0]} labels")
    if scores.shape[0] == 0:
        raise ValueError("no rows to score; pass at least one query")
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hits = top == labels.to(scores.device).view(-1, 1)
    return [hits[:, : min(k, scores.shape[1])].any(dim=1).float().mean() for k in ks]


def knn_classify(
    bank_features: Tensor,
    bank_labels: Tensor,
    query_features: Tensor,
    query_labels: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    device: torch.device | str | None = None,
    query_chunk_size: int = 1024,
    bank_chunk_size: int | None = None,
) -> KNNResult:
    """Weighted k-NN top-1/top-5 accuracy of queries against a labelled bank.

    Args:
        bank_features: (N, D), e.g. the training split.
        bank_labels: (N,) integer labels.
        query_features: (Q, D), e.g. the test split.
        query_labels: (Q,) integer labels.
        k: neighbours; clamped to N when the bank is smaller (the result's ``k`` says which was
            used), so small monitoring splits still work. Default 200 (Wu et al. 2018).
        temperature: T in exp(sim / T); default 0.1.
        num_classes: C; inferred as 1 + the largest label otherwise.
        device: where to compute; defaults to the bank's device. Inputs are moved there once.
        query_chunk_size, bank_chunk_size: see :func:`knn_class_probabilities`.

    Returns:
        :class:`KNNResult`; the accuracies are host floats (one sync, at the end).

    Raises:
        ValueError: bad shapes, negative labels, labels >= num_classes, or bad k/T.
    """
    _check_hyperparameters(k, temperature)
    if query_labels.shape != (query_features.shape[0],):
        raise ValueError(
            f"query_labels shape {tuple(query_labels.shape)} must be "
            f"({query_features.shape[0]},), one per query"
        )
    if query_features.shape[0] == 0:
        raise ValueError("there are no queries; pass at least one labelled query")
    device = torch.device(device) if device is not None else bank_features.device
    bank_labels = bank_labels.to(device, torch.int64)
    query_labels = query_labels.to(device, torch.int64)
    low = int(torch.minimum(bank_labels.min(), query_labels.min()))
    high = int(torch.maximum(bank_labels.max(), query_labels.max()))
    if low < 0:
        raise ValueError(f"labels must be class indices >= 0; found {low}")
    if num_classes is None:
        num_classes = high + 1
    elif high >= num_classes:
        raise ValueError(
            f"found label {high} but num_classes={num_classes}; pass num_classes > {high}"
        )
    probabilities = knn_class_probabilities(
        query_features.to(device),
        bank_features.to(device),
        bank_labels,
        num_classes,
        k=k,
        temperature=temperature,
        query_chunk_size=query_chunk_size,
        bank_chunk_size=bank_chunk_size,
    )
    top1, top5 = topk_accuracy(probabilities, query_labels, (1, 5))
    return KNNResult(
        top1=float(top1),
        top5=float(top5),
        predictions=probabilities.argmax(dim=1).cpu(),
        k=min(k, bank_features.shape[0]),
    )
