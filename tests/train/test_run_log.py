"""TensorBoard is optional: without it the run log writes metrics.csv and says how to get it."""

import sys
from pathlib import Path

import pytest

from byol.train import run_log
from byol.train.run_log import RunLog


def test_without_tensorboard_only_metrics_csv_and_one_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    monkeypatch.setattr(run_log, "_told_tensorboard_missing", False)
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        log = RunLog(folder)
        log.write({"step": 1, "epoch": 0, "loss": 0.5})
        log.close()
        assert (folder / "metrics.csv").is_file() and not (folder / "tensorboard").exists()
    err = capsys.readouterr().err
    assert err.count("pip install 'byol[tensorboard]'") == 1


def test_with_tensorboard_event_files_are_written(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    log = RunLog(tmp_path)
    log.write({"step": 1, "epoch": 0, "loss": 0.5})
    log.close()
    assert any((tmp_path / "tensorboard").iterdir())
