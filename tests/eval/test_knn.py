from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsClassifier

from byol.eval.features import extract_features
from byol.eval.knn import knn_class_probabilities, knn_classify, topk_accuracy
from tests.helpers import gaussian_clusters


def test_separated_clusters_are_classified_perfectly() -> None:
    features, labels = gaussian_clusters(120, 6, 32, seed=1)
    result = knn_classify(features[:600], labels[:600], features[600:], labels[600:])
    assert result.k == 200
    assert result.top1 == pytest.approx(1.0, abs=0.01)
    assert result.top5 == 1.0
    assert (result.predictions == labels[600:]).float().mean().item() == result.top1


def test_random_labels_give_chance_accuracy() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3000, 16, generator=generator)
    labels = torch.randint(0, 10, (3000,), generator=generator)
    result = knn_classify(features[:2000], labels[:2000], features[2000:], labels[2000:], k=20)
    # Chance is 0.1 (top-1) and 0.5 (top-5); 1000 queries give a std of ~0.01 and ~0.016.
    assert result.top1 == pytest.approx(0.1, abs=0.05)
    assert result.top5 == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("k", [1, 7, 40])
def test_matches_scikit_learn_with_exponential_cosine_weights(k: int) -> None:
    temperature = 0.1
    generator = torch.Generator().manual_seed(k)
    bank = torch.randn(150, 8, generator=generator, dtype=torch.float64)
    bank_labels = torch.arange(150) % 4
    queries = torch.randn(40, 8, generator=generator, dtype=torch.float64)

    # scikit-learn's cosine distance is 1 - sim, so exp((1 - d) / T) is the protocol's weight.
    reference = KNeighborsClassifier(
        n_neighbors=k,
        metric="cosine",
        algorithm="brute",
        weights=lambda distances: np.exp((1.0 - distances) / temperature),
    ).fit(bank.numpy(), bank_labels.numpy())
    expected = torch.from_numpy(reference.predict_proba(queries.numpy())).float()

    probabilities = knn_class_probabilities(queries, bank, bank_labels, 4, k=k)
    torch.testing.assert_close(probabilities, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(
        probabilities.argmax(1), torch.from_numpy(reference.predict(queries.numpy()))
    )


def test_one_neighbour_is_the_most_cosine_similar_bank_row() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    bank_labels = torch.tensor([0, 1, 2])
    # Scale must not matter (cosine), direction must.
    queries = torch.tensor([[10.0, 1.0], [0.1, 3.0], [-0.5, 0.2]])
    result = knn_classify(bank, bank_labels, queries, torch.tensor([0, 1, 1]), k=1)
    assert result.predictions.tolist() == [0, 1, 2]
    assert result.top1 == pytest.approx(2 / 3)


def test_weights_are_exponential_in_similarity() -> None:
    # Two neighbours of class 0 at similarity 0, one of class 1 at similarity 0.1:
    # class 1 gets e^1 against 2 e^0, so it wins at T=0.1 and loses at T=1.
    bank = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.1, (1 - 0.01) ** 0.5]])
    bank_labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[1.0, 0.0]])
    sharp = knn_class_probabilities(query, bank, bank_labels, 2, k=3, temperature=0.1)
    flat = knn_class_probabilities(query, bank, bank_labels, 2, k=3, temperature=1.0)
    e = torch.tensor(1.0).exp()
    torch.testing.assert_close(sharp[0], torch.stack([2 / (2 + e), e / (2 + e)]))
    assert flat.argmax().item() == 0


def test_chunked_equals_unchunked() -> None:
    features, labels = gaussian_clusters(60, 5, 12, separation=1.5, seed=3)
    queries = torch.randn(37, 12, generator=torch.Generator().manual_seed(4))
    whole = knn_class_probabilities(queries, features, labels, 5, k=25)
    for query_chunk, bank_chunk in [(7, 13), (1, 300), (37, 25), (5, 1)]:
        chunked = knn_class_probabilities(
            queries,
            features,
            labels,
            5,
            k=25,
            query_chunk_size=query_chunk,
            bank_chunk_size=bank_chunk,
        )
        torch.testing.assert_close(chunked, whole)


def test_k_larger_than_bank_is_clamped() -> None:
    features, labels = gaussian_clusters(4, 3, 8)
    result = knn_classify(features, labels, features, labels, k=200)
    assert result.k == 12
    assert result.top1 == 1.0


def test_top5_with_fewer_than_five_classes_is_one() -> None:
    features, labels = gaussian_clusters(10, 3, 8, separation=0.1)
    assert knn_classify(features, labels, features, labels).top5 == 1.0


def test_topk_accuracy_counts_rank() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    top1, top2 = topk_accuracy(scores, torch.tensor([2, 0]), (1, 2))
    assert top1.item() == pytest.approx(0.5)
    assert top2.item() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k=0"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"num_classes": 2}, "num_classes=2"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    features, labels = gaussian_clusters(5, 3, 4)
    with pytest.raises(ValueError, match=match):
        knn_classify(features, labels, features, labels, **kwargs)


def test_dimension_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="dimension"):
        knn_class_probabilities(
            torch.randn(3, 4), torch.randn(5, 6), torch.zeros(5, dtype=torch.long), 2
        )


def test_encoded_features_classify() -> None:
    features, labels = gaussian_clusters(40, 4, 6, seed=5)
    images = features.view(-1, 6, 1, 1)
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(6))
    encoder.train()
    device = torch.device("cpu")
    bank = extract_features(
        encoder, [(images[i : i + 32], labels[i : i + 32]) for i in range(0, 120, 32)], device
    )
    queries = extract_features(encoder, [(images[120:], labels[120:])], device)
    result = knn_classify(bank.features, bank.labels, queries.features, queries.labels, k=10)
    assert encoder.training  # extract_features restores the training flag
    assert result.top1 > 0.95


@settings(max_examples=30, deadline=None)
@given(
    num_bank=st.integers(1, 40),
    num_query=st.integers(1, 20),
    k=st.integers(1, 50),
    query_chunk=st.integers(1, 25),
    bank_chunk=st.integers(1, 45),
    seed=st.integers(0, 2**16),
)
def test_chunking_never_changes_the_result(
    num_bank: int, num_query: int, k: int, query_chunk: int, bank_chunk: int, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    bank = torch.randn(num_bank, 5, generator=generator)
    labels = torch.randint(0, 3, (num_bank,), generator=generator)
    queries = torch.randn(num_query, 5, generator=generator)
    whole = knn_class_probabilities(queries, bank, labels, 3, k=k)
    chunked = knn_class_probabilities(
        queries, bank, labels, 3, k=k, query_chunk_size=query_chunk, bank_chunk_size=bank_chunk
    )
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(whole.sum(1), torch.ones(num_query))
