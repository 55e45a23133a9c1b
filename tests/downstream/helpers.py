"""Tiny trained checkpoints laid out as run folders, for the downstream tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from byol.config import Config
from byol.config_io import to_dict
from byol.model import BYOL, build_model

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)


def tiny_config(backbone: str, image_size: int, cifar_stem: bool = False) -> Config:
    config = Config()
    config.model.backbone = backbone
    config.model.cifar_stem = cifar_stem
    config.model.projector_hidden_dim = 32
    config.model.projection_dim = 16
    config.model.predictor_hidden_dim = 32
    config.augment.image_size = image_size
    config.augment.mean = MEAN  # not ImageNet's, so tests see they come from the run
    config.augment.std = STD
    config.optim.batch_size = 4
    config.data.source = "my-images"
    return config


def make_run(
    run_dir: Path, backbone: str, image_size: int, cifar_stem: bool = False, name: str = "last.pt"
) -> BYOL:
    """One SGD step (weights and BatchNorm statistics move from their initial values), saved
    as ``run_dir/checkpoints/<name>`` in the training engine's format."""
    config = tiny_config(backbone, image_size, cifar_stem)
    torch.manual_seed(0)
    model = build_model(config.model)
    optimizer = torch.optim.SGD(model.online.parameters(), lr=0.1, momentum=0.9)
    images = torch.rand(4, 3, image_size, image_size)
    model(images + 0.1 * torch.randn_like(images), images.flip(-1)).loss.backward()
    optimizer.step()
    model.update_target(0.9)
    settle_batchnorm(model.online.encoder, image_size)
    (run_dir / "checkpoints").mkdir(parents=True)
    state = {"format_version": 1, "config": to_dict(config), "model": model.state_dict()}
    torch.save({**state, "step": 1, "epoch": 0}, run_dir / "checkpoints" / name)
    return model.eval()


@torch.no_grad()
def settle_batchnorm(encoder: torch.nn.Module, image_size: int) -> None:
    """Running statistics averaged over a few batches, as a trained encoder has them (after
    one step they are still mostly their initial 0 and 1, which frozen BatchNorm would use)."""
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    encoder.train()
    for _ in range(3):
        encoder(torch.randn(4, 3, image_size, image_size))  # normalised images
    for norm in norms:
        norm.momentum = 0.1
    encoder.eval()


def write_run_figures(run_dir: Path) -> None:
    """``summary.json``, ``metrics.csv`` and ``baselines.json`` as the engine writes them."""
    summary = {"data": "my-images", "images": 1234, "steps": 50, "epochs": 5, "seconds": 9.5}
    (run_dir / "summary.json").write_text(json.dumps({**summary, "collapsed": False}))
    (run_dir / "metrics.csv").write_text(
        "step,epoch,loss,knn_top1,knn_top5,online_test_top1\n"
        "10,1,3.5,0.25,0.6,\n"
        "50,5,2.1,0.4321,0.8765,0.5432\n"
        "50,5,2.0,,,\n"
    )
    figures = {"raw_pixels": {"top1": 0.1875, "top5": 0.5}, "random_encoder": {"top1": 0.125}}
    (run_dir / "baselines.json").write_text(json.dumps(figures))
