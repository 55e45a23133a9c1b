"""What a run shows while it runs: progress lines off a terminal, the thread count, the
throughput warning and Fabric's AMP notice."""

import io
import logging
from pathlib import Path

import pytest
import torch

from byol.train.engine import train
from byol.train.fabric import build_fabric
from byol.train.progress import (
    ThroughputWatch,
    progress_line,
    progress_lines_wanted,
    resolve_num_threads,
)
from tests.helpers import tiny_train_config


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_instead_of_a_bar_only_off_a_terminal() -> None:
    assert progress_lines_wanted(True, io.StringIO())
    assert not progress_lines_wanted(True, _Terminal())
    assert not progress_lines_wanted(False, io.StringIO())


def test_progress_line_is_compact_and_names_proj_std() -> None:
    line = progress_line(120, 1000, 0.41234, 0.25, 0.99123, 412.4, 0.0812)
    assert line == (
        "step 120/1000 (12%) loss 0.4123 lr 0.25 tau 0.9912 images/s 412 proj-std 0.081"
    )


def test_piped_run_logs_one_line_per_log_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_train_config(tmp_path)  # 256 images, batch 64, 2 epochs: 8 steps, a row every 2
    config.train.num_threads = 1
    before = torch.get_num_threads()
    try:
        train(config, progress=True)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/8", "4/8", "6/8", "8/8"]
    assert "proj-std: std of the L2-normalised projections" in err
    assert "\r" not in err  # no progress bar redraws


def test_default_thread_count_is_capped_by_the_cpus_available() -> None:
    import os

    assert 1 <= resolve_num_threads(None) <= len(os.sched_getaffinity(0))
    assert resolve_num_threads(3) == 3


def test_zero_threads_is_refused(tmp_path: Path) -> None:
    config = tiny_train_config(tmp_path)
    config.train.num_threads = 0
    with pytest.raises(ValueError, match=r"train\.num_threads=0 must be at least 1"):
        train(config, progress=False)


def test_throughput_warning_once_after_two_slow_windows() -> None:
    watch = ThroughputWatch()
    assert [watch.update(rate) for rate in (80.0, 100.0, 90.0)] == [None] * 3
    assert watch.update(20.0) is None  # one slow window (a k-NN evaluation, a checkpoint)
    assert watch.update(95.0) is None
    assert watch.update(20.0) is None
    message = watch.update(20.0)
    assert message is not None and "from 100 in the first steps" in message
    assert watch.update(10.0) is None and watch.update(10.0) is None  # said once


def test_fabric_amp_notice_is_dropped(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = tiny_train_config(tmp_path)
    config.train.accelerator, config.train.precision = "cpu", "bf16-mixed"
    with caplog.at_level(logging.INFO):
        build_fabric(config.train)
    captured = capfd.readouterr()
    assert "Automatic Mixed Precision" not in captured.err + captured.out + caplog.text
