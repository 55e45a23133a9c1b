"""Downstream fixtures: a labelled folder of colour-coded classes, tiny checkpoints, and a
trained torchvision ResNet-18 at 64 px with its export folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from byol.checkpoint import save_checkpoint
from byol.config import Config
from byol.config_io import to_dict
from byol.export import export_encoder
from byol.model import BYOL, build_model

from .helpers import make_run, write_run_figures

# Each class is one dominant colour under heavy noise: easy, but not by a single pixel.
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))
TRAIN_PER_CLASS, TEST_PER_CLASS = 12, 6


def write_colour_folder(root: Path, seed: int = 0) -> Path:
    """``root/{train,test}/class{0,1,2}/*.png``: 20x24 noisy images, 12 and 6 per class."""
    generator = np.random.default_rng(seed)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label, colour in enumerate(COLOURS):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                noise = generator.normal(0.0, 40.0, (20, 24, 3))
                pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{index:02d}.png")
    return root


def tiny_run(folder: Path, backbone: str = "small_resnet18_w8", seed: int = 1) -> Path:
    """A run folder whose ``checkpoints/last.pt`` holds a freshly initialised BYOL."""
    config = Config()
    config.model.backbone = backbone
    config.model.projector_hidden_dim = 32
    config.model.projection_dim = 16
    config.model.predictor_hidden_dim = 32
    config.augment.image_size = 16
    config.data.source = "digits"
    config.data.cache_dir = str(folder / "cache")
    torch.manual_seed(seed)
    model = build_model(config.model)
    state = {"config": to_dict(config), "model": model.state_dict()}
    (folder / "run" / "checkpoints").mkdir(parents=True)
    save_checkpoint(state, folder / "run" / "checkpoints" / "last.pt")
    return folder / "run"


@pytest.fixture(scope="package")
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="package")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("checkpoint"))


@dataclass(frozen=True)
class Resnet18Run:
    model: BYOL
    run_dir: Path
    export_dir: Path


@pytest.fixture(scope="session")
def resnet18_run(tmp_path_factory: pytest.TempPathFactory) -> Resnet18Run:
    root = tmp_path_factory.mktemp("resnet18")
    model = make_run(root / "run", "resnet18", 64)
    write_run_figures(root / "run")
    export_encoder(root / "run", root / "export", onnx=False)
    return Resnet18Run(model, root / "run", root / "export")
