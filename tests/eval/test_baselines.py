"""The raw-pixel and random-encoder baselines that every k-NN figure is read against."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from byol.data.label_subset import label_subset
from byol.eval.baselines import PixelEncoder, centred_pixels
from byol.eval.linear import linear_probe
from byol.eval.validation import KNNValidator
from byol.presets import preset


def test_centred_pixels_are_flat_and_mean_free() -> None:
    images = torch.rand(4, 3, 5, 5)
    flat = centred_pixels(images)
    assert flat.shape == (4, 75)
    torch.testing.assert_close(flat.mean(dim=1), torch.zeros(4), atol=1e-6, rtol=0)
    # Mean removal makes the cosine blind to a brightness offset.
    shifted = centred_pixels(images + 0.2)
    torch.testing.assert_close(F.cosine_similarity(flat, shifted), torch.ones(4))


def test_pixel_encoder_undoes_the_evaluation_normalisation() -> None:
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    images = torch.rand(2, 3, 4, 4)
    normalised = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    encoder = PixelEncoder(mean, std)
    assert not list(encoder.parameters())
    torch.testing.assert_close(encoder(normalised), centred_pixels(images), atol=1e-6, rtol=0)


def test_digits_baselines_match_a_direct_computation(tmp_path: Path) -> None:
    config = preset("digits")
    config.data.cache_dir = str(tmp_path)
    validator = KNNValidator(config, torch.device("cpu"))
    baselines = validator.evaluate_baselines()
    assert set(baselines) == {"raw_pixels", "random_encoder"}
    # Direct: cosine similarity of mean-centred 16 px pixels, k=20 votes weighted exp(s / T).
    resize = F.interpolate
    bank = validator.bank.images.float() / 255
    queries = validator.queries.images.float() / 255
    size = config.augment.image_size
    bank_features = centred_pixels(
        resize(bank, size=(size, size), mode="bicubic", antialias=True).clamp(0, 1)
    )
    query_features = centred_pixels(
        resize(queries, size=(size, size), mode="bicubic", antialias=True).clamp(0, 1)
    )
    similarity = F.normalize(query_features, dim=1) @ F.normalize(bank_features, dim=1).T
    values, indices = similarity.topk(config.monitor.knn_k, dim=1)
    votes = torch.zeros(len(query_features), 10).scatter_add_(
        1, validator.bank.labels[indices], (values / config.monitor.knn_temperature).exp()
    )
    direct = (votes.argmax(dim=1) == validator.queries.labels).float().mean().item()
    assert abs(baselines["raw_pixels"].top1 - direct) < 0.005
    assert baselines["raw_pixels"].top1 > 0.95  # centred digits: pixels are nearly perfect
    assert baselines["random_encoder"].top1 < baselines["raw_pixels"].top1


def test_baselines_keep_the_last_evaluation_for_the_retrieval_grid(tmp_path: Path) -> None:
    config = preset("digits")
    config.data.cache_dir = str(tmp_path)
    config.data.max_images = 200
    validator = KNNValidator(config, torch.device("cpu"))
    validator.evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8)))
    before = validator.last_query_features
    validator.evaluate_baselines()
    assert validator.last_query_features is before


def test_linear_probes_fit_encoder_pixels_and_random_encoder_on_the_same_splits(
    tmp_path: Path,
) -> None:
    config = preset("digits")
    config.data.cache_dir = str(tmp_path)
    config.data.max_images = 300
    validator = KNNValidator(config, torch.device("cpu"))
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8))
    probes = validator.linear_probes(encoder)
    assert set(probes) == {"encoder", "raw_pixels", "random_encoder"}
    # The pixels' probe is logistic regression on the centred pixels themselves.
    size = config.augment.image_size

    def pixels(images: torch.Tensor) -> torch.Tensor:
        resized = F.interpolate(
            images.float() / 255, size=(size, size), mode="bicubic", antialias=True
        )
        return centred_pixels(resized.clamp(0, 1))

    direct = linear_probe(
        pixels(validator.bank.images),
        validator.bank.labels,
        pixels(validator.queries.images),
        validator.queries.labels,
        num_classes=10,
        seed=config.train.seed,
    )
    assert abs(probes["raw_pixels"].top1 - direct.top1) < 0.01
    assert probes["raw_pixels"].top1 > 0.8
    # An 8-wide random projection of the pixels keeps far less than the pixels.
    assert probes["encoder"].top1 < probes["raw_pixels"].top1
    # With a few labels per class the probe sees only those bank images, as
    # `byol eval linear --labels-per-class` chooses them.
    few = validator.linear_probes(encoder, labels_per_class=3)
    keep = torch.tensor(label_subset(validator.bank.labels.tolist(), per_class=3, seed=0))
    direct_few = linear_probe(
        pixels(validator.bank.images[keep]),
        validator.bank.labels[keep],
        pixels(validator.queries.images),
        validator.queries.labels,
        num_classes=10,
        seed=config.train.seed,
    )
    assert abs(few["raw_pixels"].top1 - direct_few.top1) < 0.01
    assert few["raw_pixels"].top1 < probes["raw_pixels"].top1  # 30 labels, not 300
