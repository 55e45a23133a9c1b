"""Helpers shared by the tests: tiny models and configurations, checkpoints and run folders in
the training engine's format, in-process ``byol`` commands, and small synthetic images and
features. Everything is seeded, so a test that uses a helper twice gets the same thing twice.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from byol.backbones import build_backbone
from byol.checkpoint import save_checkpoint
from byol.cli.main import main
from byol.config import Config
from byol.config_io import to_dict
from byol.model import BYOL, build_model
from byol.presets import preset

# ---------------------------------------------------------------------------------------------
# Tiny models and configurations


def tiny_byol(
    backbone: str | Callable[[], nn.Module] = "small_resnet18_w8",
    *,
    feature_dim: int | None = None,
    projector_hidden_dim: int = 32,
    projection_dim: int = 16,
    predictor_hidden_dim: int = 32,
) -> BYOL:
    """A BYOL with small heads, built after ``torch.manual_seed(0)``.

    ``backbone`` is a registered backbone name or a function building an ``nn.Module`` (then
    ``feature_dim`` gives its output width), called after the seed so its weights are seeded.
    """
    torch.manual_seed(0)
    module = build_backbone(backbone) if isinstance(backbone, str) else backbone()
    return BYOL(
        module,
        feature_dim=feature_dim,
        projector_hidden_dim=projector_hidden_dim,
        projection_dim=projection_dim,
        predictor_hidden_dim=predictor_hidden_dim,
    )


def tiny_train_config(
    tmp_path: Path, source: str = "digits", max_images: int | None = 256
) -> Config:
    """A training configuration that trains in seconds on two CPU cores: 16 px, batch 64, a
    width-8 ResNet, 2 epochs, deterministic, outputs at ``tmp_path/runs/run``."""
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


# Not the ImageNet statistics, so tests see that an export or a loaded encoder takes them from
# the run's configuration.
EXPORT_MEAN = (0.5, 0.4, 0.3)
EXPORT_STD = (0.2, 0.25, 0.3)


def tiny_export_config(backbone: str, image_size: int, cifar_stem: bool = False) -> Config:
    """A configuration with small heads and :data:`EXPORT_MEAN` / :data:`EXPORT_STD`."""
    config = Config()
    config.model.backbone = backbone
    config.model.cifar_stem = cifar_stem
    config.model.projector_hidden_dim = 32
    config.model.projection_dim = 16
    config.model.predictor_hidden_dim = 32
    config.augment.image_size = image_size
    config.augment.mean = EXPORT_MEAN
    config.augment.std = EXPORT_STD
    return config


def tiny_folder_run_config(backbone: str, image_size: int, cifar_stem: bool = False) -> Config:
    """:func:`tiny_export_config` as a run on an image folder (``my-images``, batch 4) saves it."""
    config = tiny_export_config(backbone, image_size, cifar_stem)
    config.optim.batch_size = 4
    config.data.source = "my-images"
    return config


# ---------------------------------------------------------------------------------------------
# Checkpoints and run folders in the training engine's format


@dataclass
class TrainedRun:
    """A BYOL after one optimiser step, its config and its checkpoint file."""

    model: BYOL
    config: Config
    checkpoint: Path


@dataclass(frozen=True)
class Resnet18Run:
    """A trained torchvision ResNet-18 at 64 px: the model, its run folder and its export."""

    model: BYOL
    run_dir: Path
    export_dir: Path


def one_step_model(config: Config) -> tuple[BYOL, dict[str, Any]]:
    """One SGD step and one EMA step: weights and BatchNorm statistics differ from init.

    Returns the model in eval mode and the optimiser's state dict."""
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


def save_engine_checkpoint(
    path: Path, state: dict[str, Any], config: dict[str, Any], **extra: Any
) -> Path:
    """A checkpoint dict exactly as the training engine writes it."""
    torch.save({"format_version": 1, "config": config, "model": state, **extra}, path)
    return path


def one_step_checkpoint(
    directory: Path, backbone: str, image_size: int, cifar_stem: bool = False
) -> TrainedRun:
    """:func:`one_step_model` on :func:`tiny_export_config`, saved as ``directory/last.pt``
    with its optimiser state, step 1 and epoch 0."""
    config = tiny_export_config(backbone, image_size, cifar_stem)
    model, optimizer_state = one_step_model(config)
    checkpoint = save_engine_checkpoint(
        directory / "last.pt",
        model.state_dict(),
        to_dict(config),
        optimizer=optimizer_state,
        step=1,
        epoch=0,
    )
    return TrainedRun(model, config, checkpoint)


def one_step_run_folder(
    run_dir: Path, backbone: str, image_size: int, cifar_stem: bool = False, name: str = "last.pt"
) -> BYOL:
    """:func:`one_step_model` on :func:`tiny_folder_run_config` with settled BatchNorm
    statistics, saved as ``run_dir/checkpoints/<name>`` in the training engine's format."""
    config = tiny_folder_run_config(backbone, image_size, cifar_stem)
    model, _ = one_step_model(config)
    settle_batchnorm(model.online.encoder, image_size)
    (run_dir / "checkpoints").mkdir(parents=True)
    state = {"format_version": 1, "config": to_dict(config), "model": model.state_dict()}
    torch.save({**state, "step": 1, "epoch": 0}, run_dir / "checkpoints" / name)
    return model.eval()


@torch.no_grad()
def settle_batchnorm(encoder: nn.Module, image_size: int) -> None:
    """Running statistics averaged over a few batches, as a trained encoder has them (after
    one step they are still mostly their initial 0 and 1, which frozen BatchNorm would use)."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    encoder.train()
    for _ in range(3):
        encoder(torch.randn(4, 3, image_size, image_size))  # normalised images
    for norm in norms:
        norm.momentum = 0.1
    encoder.eval()


def untrained_run_folder(folder: Path, backbone: str = "small_resnet18_w8", seed: int = 1) -> Path:
    """A run folder ``folder/run`` whose ``checkpoints/last.pt`` holds a freshly initialised
    BYOL with small heads at 16 px (trained on ``digits``, cached under ``folder/cache``)."""
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


class RunsShellCommand:
    """Unpickling this runs a shell command: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (f"touch '{self.marker}'",)


# ---------------------------------------------------------------------------------------------
# The command line, in-process (no interpreter start-up)

# A one-step run on a folder: 16 px crops, batch 8, a width-8 ResNet, tiny heads.
TINY_TRAIN_FLAGS = [
    "--preset", "digits",
    "--model.backbone", "small_resnet18_w8",
    "--model.projector_hidden_dim", "32",
    "--model.predictor_hidden_dim", "32",
    "--model.projection_dim", "16",
    "--augment.image_size", "16",
    "--optim.batch_size", "8",
    "--data.num_workers", "0",
    "--monitor.knn_every_epochs", "0",
    "--train.max_steps", "1",
    "--train.precision", "32-true",
    "--train.log_every_steps", "1",
    "--no-progress",
]  # fmt: skip


def run_train(tmp_path: Path, *arguments: str, name: str = "run") -> int:
    """``byol train *arguments`` with :data:`TINY_TRAIN_FLAGS`, outputs under ``tmp_path``."""
    return main(
        [
            "train",
            *TINY_TRAIN_FLAGS,
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--train.output_dir",
            str(tmp_path / "runs"),
            "--train.run_name",
            name,
            *arguments,  # last, so they override the tiny settings
        ]
    )


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of a failed command: exactly one line, no traceback; returns it."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("byol: warning:")]
    assert len(lines) == 1, err
    return lines[0]


def last_json_line(text: str) -> dict[str, object]:
    """The JSON record a command prints last."""
    return json.loads(text.strip().splitlines()[-1])


def mount_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at ``folder`` mounted with ``options`` (needs the right to mount: root in a
    container; skips the test otherwise), unmounted afterwards. For ``yield from``."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# ---------------------------------------------------------------------------------------------
# Small images and features

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


def noise_images(folder: Path, count: int, size: tuple[int, int] = (24, 20)) -> list[Path]:
    """``count`` random RGB PNGs of ``size`` (width, height) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for index in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"image-{index:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def solid_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Path:
    """Write a single-colour RGB image (format from the extension); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def noise_jpeg(path: Path, side: int = 64, seed: int = 0) -> Path:
    """Write a random-noise RGB JPEG (large enough that truncating it breaks decoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def noise_png_bytes(size: tuple[int, int] = (20, 20), seed: int = 0) -> bytes:
    """The bytes of a random-noise RGB PNG of ``size`` (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 pixels of an RGB image."""
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.uint8)


def gaussian_clusters(
    num_per_class: int, num_classes: int, dim: int, *, separation: float = 6.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Well-separated isotropic clusters: features (N, dim) float32 and labels (N,) int64.

    Cluster centres are random directions scaled by ``separation`` (unit noise), so both
    cosine and Euclidean classifiers separate them almost perfectly.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=generator)
    centres = separation * centres / centres.norm(dim=1, keepdim=True)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    features = centres[labels] + torch.randn(len(labels), dim, generator=generator)
    order = torch.randperm(len(labels), generator=generator)
    return features[order], labels[order]
