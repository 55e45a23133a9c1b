"""A trained torchvision ResNet-18 at 64 px: its run folder and its export folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from byol.export import export_encoder
from byol.model import BYOL

from .helpers import make_run, write_run_figures


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
