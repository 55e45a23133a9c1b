from __future__ import annotations

import pytest
import torch
from torch import nn

from byol.eval.features import extract_features
from byol.precision import resolve_precision


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1))


def test_features_are_float32_cpu_in_order_and_batchnorm_is_frozen() -> None:
    encoder = _encoder().train()
    running_mean = encoder[1].running_mean.clone()
    images = torch.randn(10, 3, 6, 6)
    labels = torch.arange(10, dtype=torch.int32)
    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    features = extract_features(encoder, batches, "cpu", progress=True)
    assert features.features.shape == (10, 4)  # (B, 4, 1, 1) flattened
    assert features.features.dtype == torch.float32
    assert features.labels.dtype == torch.int64
    assert features.labels.tolist() == list(range(10))
    assert encoder.training and encoder[1].training  # flags restored
    assert torch.equal(encoder[1].running_mean, running_mean)  # eval mode: no update
    with torch.no_grad():
        expected = encoder.eval()(images).flatten(1)
    torch.testing.assert_close(features.features, expected)


def test_features_can_feed_autograd() -> None:
    features = extract_features(_encoder(), [(torch.randn(2, 3, 5, 5), torch.zeros(2))])
    head = nn.Linear(4, 2)
    head(features.features).sum().backward()  # would fail on inference-mode tensors
    assert head.weight.grad is not None


def test_bfloat16_autocast_returns_float32() -> None:
    batches = [(torch.randn(3, 3, 5, 5), torch.zeros(3))]
    features = extract_features(_encoder(), batches, precision="bf16-mixed")
    assert features.features.dtype == torch.float32


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="nothing"):
        extract_features(_encoder(), [])
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        extract_features(_encoder(), [(torch.randn(3, 3, 5, 5), torch.zeros(2))])
    with pytest.raises(ValueError, match="precision='fp8'"):
        resolve_precision("fp8", "cpu")


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("byol.precision.cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr("byol.precision.cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("32-true", "cpu") == "32-true"
