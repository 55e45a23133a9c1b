"""What a crash leaves in a run folder, and how a resumed run tidies it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from byol.checkpoint import read_checkpoint
from byol.train.engine import train
from byol.train.run_log import RunLog
from tests.helpers import tiny_train_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_logged_after_the_checkpoint_and_a_torn_row_are_dropped(tmp_path: Path) -> None:
    RunLog(tmp_path, tensorboard=False).close()  # the header
    with (tmp_path / "metrics.csv").open("a") as handle:
        handle.write("2,0,4.1,,,,,,,,\n4,0,3.9,,,,,,,,\n6,1,3.5,,,,,,,,\n8,1,3.")  # killed mid-row
    log = RunLog(tmp_path, tensorboard=False, resume_step=4)
    log.write({"step": 6, "epoch": 1, "loss": 3.25})
    log.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,epoch,loss,")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["2", "0", "4.1"],
        ["4", "0", "3.9"],
        ["6", "1", "3.25"],
    ]


def test_crash_between_last_pt_and_its_epoch_copy_loses_nothing(tmp_path: Path) -> None:
    config = tiny_train_config(tmp_path, max_images=128)  # 2 steps per epoch, 2 epochs
    full = train(config, progress=False)
    # As if killed after last.pt of epoch 1 was written, before its epoch-0001.pt copy, with
    # the temporary file of that copy left behind.
    crashed = tmp_path / "runs" / "crashed" / "checkpoints"
    crashed.mkdir(parents=True)
    shutil.copy(full.run_dir / "checkpoints" / "epoch-0001.pt", crashed / "last.pt")
    (crashed / ".epoch-0001.pt.partial-x1y2").write_bytes(b"half a checkpoint")
    resumed = train(config, resume=crashed.parent, progress=False)
    assert sorted(p.name for p in crashed.iterdir()) == ["epoch-0001.pt", "final.pt", "last.pt"]
    assert read_checkpoint(crashed / "epoch-0001.pt")["step"] == 2
    expected = read_checkpoint(full.checkpoint)["model"]
    actual = read_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(tensor, actual[key]) for key, tensor in expected.items())
