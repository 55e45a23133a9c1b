"""A resumed run may change where it runs (process count, workers, cache) and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from byol.cli.main import main
from byol.config import Config
from byol.config_io import save_config
from byol.train.run_dir import RESUME_OVERRIDES, apply_resume_overrides


def test_allowed_overrides_change_the_resumed_config() -> None:
    config = apply_resume_overrides(
        Config(), {"train.devices": 1, "train.strategy": "ddp", "data.num_workers": 0}
    )
    assert (config.train.devices, config.train.strategy, config.data.num_workers) == ("1", "ddp", 0)


def test_other_overrides_are_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"--optim\.batch_size") as error:
        apply_resume_overrides(Config(), {"train.devices": 2, "optim.batch_size": 32})
    assert all(f"--{key}" in str(error.value) for key in RESUME_OVERRIDES)


def test_cli_refuses_a_batch_size_change_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_config(Config(), tmp_path / "config.yaml")  # a run killed before its first checkpoint
    (tmp_path / "checkpoints").mkdir()
    status = main(["train", "--resume", str(tmp_path), "--optim.batch_size", "32"])
    assert status == 2
    message = capsys.readouterr().err
    assert "--optim.batch_size" in message and "--train.devices" in message
