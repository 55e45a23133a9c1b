from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from byol.config import LinearEvalConfig
from byol.eval.linear import (
    fit_logistic_regression,
    linear_probe,
    load_linear_classifier,
    save_linear_classifier,
)
from byol.eval.linear_official import linear_eval_official
from tests.helpers import gaussian_clusters


def test_probe_separates_clusters() -> None:
    features, labels = gaussian_clusters(100, 8, 24, seed=1)
    # An offset and a large scale: the standardisation must undo them.
    features = features * 50.0 + 1000.0
    result = linear_probe(
        features[:600], labels[:600], features[600:], labels[600:], max_iterations=100
    )
    assert result.top1 > 0.99
    assert result.top5 == 1.0
    assert set(result.validation_top1) == {1e-6, 1e-5, 1e-4, 1e-3, 1e-2}
    assert result.weight_decay in result.validation_top1
    predictions = result.classifier(features[600:]).argmax(1)
    assert (predictions == labels[600:]).float().mean().item() == pytest.approx(result.top1)


def test_probe_on_random_labels_is_at_chance() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2000, 16, generator=generator)
    labels = torch.randint(0, 4, (2000,), generator=generator)
    result = linear_probe(features[:1000], labels[:1000], features[1000:], labels[1000:])
    assert result.top1 == pytest.approx(0.25, abs=0.06)


def test_logistic_regression_matches_closed_form_gradient_condition() -> None:
    # At the optimum of CE + wd/2 ||W||^2 the gradient vanishes: X^T (softmax - Y) / N = -wd W.
    features, labels = gaussian_clusters(30, 3, 5, separation=1.0, seed=2)
    classifier = fit_logistic_regression(features, labels, 3, weight_decay=0.1, max_iterations=500)
    standardised = (features - classifier.mean) / classifier.std
    with torch.no_grad():
        residual = torch.softmax(classifier.linear(standardised), 1) - nn.functional.one_hot(
            labels, 3
        )
        gradient = residual.T @ standardised / len(labels)
        torch.testing.assert_close(gradient, -0.1 * classifier.linear.weight, atol=1e-4, rtol=0)
        torch.testing.assert_close(residual.mean(0), torch.zeros(3), atol=1e-4, rtol=0)


def test_stronger_penalty_shrinks_weights() -> None:
    features, labels = gaussian_clusters(30, 3, 5, seed=3)
    weak = fit_logistic_regression(features, labels, 3, 1e-4)
    strong = fit_logistic_regression(features, labels, 3, 1.0)
    assert strong.linear.weight.norm() < 0.5 * weak.linear.weight.norm()


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    features, labels = gaussian_clusters(20, 3, 6)
    result = linear_probe(features, labels, features, labels, weight_decays=(1e-3,))
    assert result.validation_top1 == {}
    path = save_linear_classifier(result.classifier, tmp_path / "probe" / "linear.safetensors")
    loaded = load_linear_classifier(path)
    torch.testing.assert_close(loaded(features), result.classifier(features))


def test_load_rejects_other_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a LinearClassifier"):
        load_linear_classifier(tmp_path / "other.safetensors")


def test_probe_rejects_bad_input() -> None:
    features, labels = gaussian_clusters(5, 2, 3)
    with pytest.raises(ValueError, match=r"validation_fraction=1\.5"):
        linear_probe(features, labels, features, labels, validation_fraction=1.5)
    with pytest.raises(ValueError, match="dimension"):
        linear_probe(features, labels, features[:, :2], labels)
    with pytest.raises(ValueError, match="num_classes=1"):
        linear_probe(features, labels, features, labels, num_classes=1)


def test_official_protocol_trains_only_the_head() -> None:
    features, labels = gaussian_clusters(64, 4, 12, seed=4)
    images = features.view(-1, 3, 2, 2)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(12, 12), nn.BatchNorm1d(12))
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    epochs_seen: list[int] = []

    def loader(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        epochs_seen.append(epoch)
        order = torch.randperm(192, generator=torch.Generator().manual_seed(epoch))
        return [(images[order[i : i + 32]], labels[order[i : i + 32]]) for i in range(0, 192, 32)]

    result = linear_eval_official(
        encoder,
        loader,
        [(images[192:], labels[192:])],
        feature_dim=12,
        num_classes=4,
        batch_size=32,
        steps_per_epoch=6,
        settings=LinearEvalConfig(epochs=10, base_learning_rate=8.0),
    )
    assert epochs_seen == list(range(10))
    assert result.top1 > 0.95
    assert encoder.training  # restored
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), f"{name} changed: the encoder must stay frozen"
    assert torch.equal(result.classifier.mean, torch.zeros(12))
