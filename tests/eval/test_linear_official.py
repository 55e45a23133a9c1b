"""The official linear evaluation on uint8 caches: crops and flips, the encoder's own size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from byol.config import Config, LinearEvalConfig
from byol.data.cache import ImageCache, cache_from_arrays
from byol.eval.linear_official import crop_and_flip, linear_eval_official_on_splits


class MeanColour(nn.Module):
    """(B, 3, H, W) -> the mean of each channel (B, 3), with a BatchNorm that must stay frozen;
    counts its forward passes."""

    num_features = 3

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.calls = 0

    def forward(self, images: Tensor) -> Tensor:
        self.calls += 1
        return self.norm(images.mean(dim=(2, 3)))


def _colour_split(per_class: int, seed: int) -> ImageCache:
    """Reddish images (class 0) and bluish ones (class 1), 12 x 12, with pixel noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 80, size=(2 * per_class, 12, 12, 3), dtype=np.uint8)
    images[:per_class, ..., 0] += 150
    images[per_class:, ..., 2] += 150
    labels = np.repeat(np.arange(2, dtype=np.int64), per_class)
    return cache_from_arrays(
        images, labels, 12, classes=["red", "blue"], description="colours", name="colours"
    )


def _config() -> Config:
    config = Config()
    config.augment.image_size = 8
    config.augment.mean, config.augment.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    return config


def test_trains_on_the_caches_without_extra_forward_passes() -> None:
    encoder = MeanColour()
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    splits = (_colour_split(24, seed=0), _colour_split(8, seed=1))
    result = linear_eval_official_on_splits(
        encoder,
        splits,
        _config(),
        settings=LinearEvalConfig(epochs=3, base_learning_rate=20.0),
        batch_size=16,
    )
    assert result.top1 == 1.0 and result.top5 == 1.0
    assert result.classifier.linear.weight.shape == (2, 3)  # the declared num_features
    # 3 epochs of 48 / 16 = 3 batches, then one test batch of 16: no probing pass.
    assert encoder.calls == 3 * 3 + 1
    assert encoder.training
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), f"{name} changed: the encoder must stay frozen"


def test_an_encoder_without_a_declared_size_is_refused() -> None:
    encoder = nn.Sequential(nn.Flatten(), nn.LazyLinear(4))
    splits = (_colour_split(4, seed=0), _colour_split(2, seed=1))
    with pytest.raises(ValueError, match="cannot tell the feature size of Sequential"):
        linear_eval_official_on_splits(encoder, splits, _config(), batch_size=4)


def test_crop_and_flip_keeps_the_colours() -> None:
    view = crop_and_flip(_config().augment)
    images = torch.zeros(4, 3, 12, 12, dtype=torch.uint8)
    images[:, 0] = 255  # pure red: crops and flips leave it red, colour jitter would not
    out = view(images, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 8, 8)
    torch.testing.assert_close(out[:, 0], torch.full((4, 8, 8), 2.0))
    torch.testing.assert_close(out[:, 1:], torch.full((4, 2, 8, 8), -2.0))
