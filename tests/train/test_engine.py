import csv
import shutil
from pathlib import Path

import pytest
import torch

from byol.checkpoint import read_checkpoint
from byol.train.engine import train
from tests.helpers import tiny_train_config


def _losses(run_dir: Path) -> list[float]:
    with (run_dir / "metrics.csv").open() as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle) if row["loss"]]


def test_run_folder_holds_config_logs_checkpoints_and_report(tmp_path: Path) -> None:
    config = tiny_train_config(tmp_path)
    result = train(config, progress=False)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.yaml", "metrics.csv", "tensorboard", "checkpoints", "report.html"} <= files
    names = {p.name for p in (result.run_dir / "checkpoints").iterdir()}
    assert {"epoch-0001.pt", "final.pt", "last.pt"} <= names
    assert result.steps == 2 * (256 // 64)
    state = read_checkpoint(result.checkpoint)
    assert (
        state["step"] == result.steps
        and state["config"]["model"]["backbone"] == "small_resnet18_w8"
    )


def test_resumed_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    config = tiny_train_config(tmp_path)
    full = train(config, progress=False)
    # A second run folder holding only the checkpoint after epoch 1, as if killed there.
    resumed_dir = tmp_path / "runs" / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(
        full.run_dir / "checkpoints" / "epoch-0001.pt", resumed_dir / "checkpoints" / "last.pt"
    )
    resumed = train(config, resume=resumed_dir, progress=False)
    assert resumed.steps == full.steps
    expected = read_checkpoint(full.checkpoint)["model"]
    actual = read_checkpoint(resumed.checkpoint)["model"]
    for key, tensor in expected.items():
        assert torch.equal(tensor, actual[key]), key


def test_new_run_refuses_an_existing_run_folder(tmp_path: Path) -> None:
    config = tiny_train_config(tmp_path)
    config.train.epochs = 1
    train(config, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(config, progress=False)


@pytest.mark.usefixtures("cifar10_jpg_root")
def test_short_cifar10_run_lowers_the_loss(tmp_path: Path, shared_cache_dir: Path) -> None:
    config = tiny_train_config(tmp_path, source="cifar10-jpg", max_images=512)
    config.data.cache_dir = str(shared_cache_dir)
    config.augment.image_size = 32
    config.train.epochs = 4
    config.train.log_every_steps = 4
    result = train(config, progress=False)
    losses = _losses(result.run_dir)
    assert losses[-1] < losses[0] - 0.1, losses
