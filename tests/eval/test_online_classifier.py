"""The online linear classifier learns from detached features and never touches the encoder."""

from __future__ import annotations

import copy

import torch

from byol.eval.online_classifier import OnlineClassifier
from byol.model import BYOL
from byol.small_resnet import SmallResNet


def _model() -> BYOL:
    torch.manual_seed(0)
    return BYOL(
        SmallResNet(width=8),
        feature_dim=64,
        projector_hidden_dim=32,
        projection_dim=16,
        predictor_hidden_dim=32,
    )


def test_the_classifier_changes_no_encoder_gradient() -> None:
    views = torch.randn(2, 8, 3, 16, 16)
    labels = torch.randint(0, 10, (8,))
    without, with_classifier = _model(), _model()
    out = without(*views)
    out.loss.backward()
    out = with_classifier(*views)
    out.loss.backward()
    before = {
        n: p.grad.clone() for n, p in with_classifier.named_parameters() if p.grad is not None
    }
    weights = copy.deepcopy(with_classifier.state_dict())
    classifier = OnlineClassifier(64, 10, torch.device("cpu"))
    classifier.step(out.online_representation_1, labels)
    for name, parameter in with_classifier.named_parameters():
        if parameter.grad is None:
            continue
        # Identical to the run without a classifier, and not changed by its step.
        torch.testing.assert_close(parameter.grad, before[name], atol=0, rtol=0)
        torch.testing.assert_close(parameter.grad, dict(without.named_parameters())[name].grad)
    for name, value in with_classifier.state_dict().items():
        torch.testing.assert_close(value, weights[name], atol=0, rtol=0)
    assert classifier.linear.weight.grad is not None


def test_the_classifier_learns_separable_features_and_ignores_unlabelled() -> None:
    torch.manual_seed(0)
    centres = torch.randn(4, 16) * 3
    labels = torch.randint(0, 4, (256,))
    features = centres[labels] + torch.randn(256, 16) * 0.3
    classifier = OnlineClassifier(16, 4, torch.device("cpu"))
    for _ in range(30):
        classifier.step(features, labels)
    assert classifier.read_train_accuracy() > 0.9
    top1, top5 = classifier.accuracy(features, labels)
    assert top1 > 0.95 and top5 == 1.0
    # Unlabelled images (-1) neither count nor raise.
    classifier.step(features[:8], torch.full((8,), -1))
    assert torch.isnan(torch.tensor(classifier.read_train_accuracy()))
