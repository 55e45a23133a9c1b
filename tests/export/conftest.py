"""Tiny BYOL checkpoints in the training engine's format, shared by the export tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from byol.config import Config
from byol.config_io import to_dict
from byol.model import BYOL, build_model


@dataclass
class TrainedRun:
    """A BYOL after one optimiser step, its config and its checkpoint file."""

    model: BYOL
    config: Config
    checkpoint: Path


def tiny_config(backbone: str, image_size: int, cifar_stem: bool = False) -> Config:
    config = Config()
    config.model.backbone = backbone
    config.model.cifar_stem = cifar_stem
    config.model.projector_hidden_dim = 32
    config.model.projection_dim = 16
    config.model.predictor_hidden_dim = 32
    config.augment.image_size = image_size
    # Not the ImageNet defaults, so the manifest test sees they come from the config.
    config.augment.mean = (0.5, 0.4, 0.3)
    config.augment.std = (0.2, 0.25, 0.3)
    return config


def trained_model(config: Config) -> tuple[BYOL, dict[str, Any]]:
    """One SGD step and one EMA step: weights and BatchNorm statistics differ from init."""
    torch.manual_seed(0)
    model = build_model(config.model)
    optimizer = torch.optim.SGD(model.online.parameters(), lr=0.1, momentum=0.9)
    size = config.augment.image_size
    images = torch.rand(4, 3, size, size)
    out = model(images + 0.1 * torch.randn_like(images), images.flip(-1))
    out.loss.backward()
    optimizer.step()
    model.update_target(0.9)
    return model.eval(), optimizer.state_dict()


def save_checkpoint(
    path: Path, state: dict[str, Any], config: dict[str, Any], **extra: Any
) -> Path:
    """A checkpoint dict exactly as the training engine writes it."""
    torch.save({"format_version": 1, "config": config, "model": state, **extra}, path)
    return path


def make_run(
    directory: Path, backbone: str, image_size: int, cifar_stem: bool = False
) -> TrainedRun:
    config = tiny_config(backbone, image_size, cifar_stem)
    model, optimizer_state = trained_model(config)
    checkpoint = save_checkpoint(
        directory / "last.pt",
        model.state_dict(),
        to_dict(config),
        optimizer=optimizer_state,
        step=1,
        epoch=0,
    )
    return TrainedRun(model, config, checkpoint)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """byol's own SmallResNet (width 8) at 16 px: the cheapest checkpoint."""
    return make_run(tmp_path_factory.mktemp("small"), "small_resnet18_w8", 16)
