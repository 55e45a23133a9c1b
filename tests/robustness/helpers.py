"""Tiny runs of ``byol train`` through the CLI, in-process (no interpreter start-up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byol.cli.main import main

# A one-step run on a folder: 16 px crops, batch 8, a width-8 ResNet, tiny heads.
TINY = [
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
    """``byol train *arguments`` with the tiny settings, outputs under ``tmp_path``."""
    return main(
        [
            "train",
            *TINY,
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--train.output_dir",
            str(tmp_path / "runs"),
            "--train.run_name",
            name,
            *arguments,  # last, so they override the tiny settings
        ]
    )


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


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of a failed command: exactly one line, no traceback; returns it."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("byol: warning:")]
    assert len(lines) == 1, err
    return lines[0]
