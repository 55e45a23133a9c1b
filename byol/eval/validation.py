"""k-NN accuracy on a labelled split during training, and the report's retrieval grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from byol.config import Config
from byol.data.cache import ImageCache
from byol.data.label_subset import label_subset
from byol.eval.baselines import PixelEncoder
from byol.eval.batches import eval_batches
from byol.eval.features import Features, extract_features
from byol.eval.knn import KNNResult, knn_classify
from byol.eval.linear import LinearProbeResult, linear_probe
from byol.eval.splits import load_labelled_splits
from byol.model import build_model


class KNNValidator:
    """Weighted k-NN (k, T from ``config.monitor``): train split as bank, test split as queries.

    Runs where ``enabled`` (rank 0 in a multi-process run); the images are cached as uint8 once,
    at construction. ``source`` defaults to ``config.data.val_source``, ``batch_size`` to
    ``config.monitor.eval_batch_size``; ``splits`` (bank, queries) replaces loading them.
    """

    def __init__(
        self,
        config: Config,
        device: torch.device,
        enabled: bool = True,
        source: str | None = None,
        batch_size: int | None = None,
        splits: tuple[ImageCache, ImageCache] | None = None,
    ) -> None:
        self.config, self.device = config, device
        self.batch_size = config.monitor.eval_batch_size if batch_size is None else batch_size
        source = source or config.data.val_source
        self.enabled = enabled and source is not None
        self._last: tuple[Features, Features] | None = None
        if source is None or not self.enabled:
            return
        bank, queries = splits or load_labelled_splits(config, source)
        self.bank, self.queries = bank, queries

    def _features(self, encoder: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Features:
        batches = eval_batches(images, labels, self.config.augment, self.batch_size, self.device)
        return extract_features(encoder, batches, self.device, output_device=self.device)

    @property
    def last_query_features(self) -> Features | None:
        """The test split's features from the last :meth:`evaluate`, None before it."""
        return None if self._last is None else self._last[1]

    def evaluate(self, encoder: nn.Module) -> KNNResult | None:
        """Top-1/top-5 of the encoder's features (eval mode; training flags are restored)."""
        if not self.enabled:
            return None
        bank = self._features(encoder, self.bank.images, self.bank.labels)
        queries = self._features(encoder, self.queries.images, self.queries.labels)
        self._last = (bank, queries)
        return knn_classify(
            bank.features,
            bank.labels,
            queries.features,
            queries.labels,
            k=self.config.monitor.knn_k,
            temperature=self.config.monitor.knn_temperature,
            device=self.device,
        )

    def evaluate_baselines(self) -> dict[str, KNNResult]:
        """k-NN of the raw pixels (:class:`~byol.eval.baselines.PixelEncoder`) and of a randomly
        initialised encoder of the configured architecture (seeded by ``train.seed``), on the
        same bank and queries. The features of the last :meth:`evaluate` are kept."""
        if not self.enabled:
            return {}
        last = self._last
        try:
            augment = self.config.augment
            pixels = self.evaluate(PixelEncoder(augment.mean, augment.std).to(self.device))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.train.seed)
                random_encoder = build_model(self.config.model).online.encoder
            random = self.evaluate(random_encoder.to(self.device))
        finally:
            self._last = last
        return {
            name: result
            for name, result in (("raw_pixels", pixels), ("random_encoder", random))
            if result is not None
        }

    def linear_probes(
        self, encoder: nn.Module, labels_per_class: int | None = None
    ) -> dict[str, LinearProbeResult]:
        """The fast linear probe (:func:`~byol.eval.linear.linear_probe`, trained on the bank's
        features, scored on the queries') of ``encoder``, the raw pixels and the random encoder
        of :meth:`evaluate_baselines`, as ``{"encoder": .., "raw_pixels": .., "random_encoder":
        ..}``; empty where not enabled. With ``labels_per_class``, trained on that many bank
        images per class (:func:`~byol.data.label_subset.label_subset`, seeded by
        ``train.seed``), as ``byol eval linear --labels-per-class`` selects them."""
        if not self.enabled:
            return {}
        bank_images, bank_labels = self.bank.images, self.bank.labels
        if labels_per_class is not None:
            chosen = label_subset(
                bank_labels.tolist(), per_class=labels_per_class, seed=self.config.train.seed
            )
            keep = torch.tensor(chosen, dtype=torch.long)
            bank_images, bank_labels = bank_images[keep], bank_labels[keep]
        augment = self.config.augment
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.train.seed)
            random_encoder = build_model(self.config.model).online.encoder
        encoders = {
            "encoder": encoder,
            "raw_pixels": PixelEncoder(augment.mean, augment.std),
            "random_encoder": random_encoder,
        }
        results = {}
        for name, module in encoders.items():
            bank = self._features(module.to(self.device), bank_images, bank_labels)
            queries = self._features(module, self.queries.images, self.queries.labels)
            results[name] = linear_probe(
                bank.features,
                bank.labels,
                queries.features,
                queries.labels,
                num_classes=len(self.bank.classes),
                seed=self.config.train.seed,
                device=self.device,
            )
        return results

    def save_retrieval(self, path: Path, queries: int = 8, neighbours: int = 8) -> bool:
        """Nearest training images of the first test image of each class, from the last
        :meth:`evaluate`, as ``retrieval.npz`` for the report. False when there is nothing."""
        if self._last is None:
            return False
        bank, query = self._last
        labels = query.labels.cpu()
        firsts = [int(torch.nonzero(labels == c)[0]) for c in labels.unique()[:queries].tolist()]
        chosen = torch.tensor(firsts, dtype=torch.long)
        similarity = (
            F.normalize(query.features[chosen.to(query.features.device)], dim=1)
            @ F.normalize(bank.features, dim=1).T
        )
        nearest = similarity.topk(min(neighbours, bank.features.shape[0]), dim=1).indices.cpu()
        np.savez_compressed(
            path,
            queries=self.queries.images[chosen].numpy(),
            neighbours=self.bank.images[nearest].numpy(),
            query_labels=self.queries.labels[chosen].numpy(),
            neighbour_labels=self.bank.labels[nearest].numpy(),
            class_names=np.array(self.bank.classes),
        )
        return True
