"""A tiny configuration that trains in seconds on two CPU cores."""

from __future__ import annotations

from pathlib import Path

from byol.config import Config
from byol.presets import preset


def tiny_config(tmp_path: Path, source: str = "digits", max_images: int | None = 256) -> Config:
    config = preset("digits")
    config.model.backbone = "small_resnet18_w8"
    config.model.projector_hidden_dim = 64
    config.model.predictor_hidden_dim = 64
    config.model.projection_dim = 32
    config.augment.image_size = 16
    config.optim.batch_size = 64
    config.optim.warmup_epochs = 1
    config.data.source = source
    config.data.val_source = None
    config.data.max_images = max_images
    config.data.cache_dir = str(tmp_path / "cache")
    config.data.num_workers = 0
    config.monitor.knn_every_epochs = 0
    config.train.epochs = 2
    config.train.log_every_steps = 2
    config.train.checkpoint_every_epochs = 1
    config.train.output_dir = str(tmp_path / "runs")
    config.train.run_name = "run"
    config.train.precision = "32-true"
    config.train.deterministic = True
    return config
