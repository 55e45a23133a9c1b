"""Checkpoint files: corrupted ones are refused on every read, a really full disk gives the
one-line error, and the files get the umask's permissions like every other output."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from byol.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from byol.cli.main import main
from tests.helpers import mount_tmpfs, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs (needs the right to mount: root in a container)."""
    yield from mount_tmpfs(tmp_path / "disk", "size=256k")


def _flip_middle(path: Path, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))


COMMANDS = {
    "train --resume": lambda run, out: ["train", "--resume", str(run), "--no-progress"],
    "eval knn": lambda run, out: ["eval", "knn", "--checkpoint", str(run), "--data", "digits"],
    "export": lambda run, out: ["export", "--checkpoint", str(run), "--out", str(out)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_checkpoint_with_flipped_bytes_is_refused_in_one_line(
    one_step_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    copy = tmp_path / "copy"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "config.yaml").write_bytes((one_step_run / "config.yaml").read_bytes())
    last = copy / "checkpoints" / "last.pt"
    last.write_bytes((one_step_run / "checkpoints" / "last.pt").read_bytes())
    _flip_middle(last)
    assert main(COMMANDS[command](copy, tmp_path / "exported")) == 2
    line = one_error_line(capsys)
    assert f"checkpoint {last} is corrupted" in line and "CRC-32" in line
    assert not (tmp_path / "exported").exists()


def test_read_checkpoint_refuses_a_damaged_archive(one_step_run: Path, tmp_path: Path) -> None:
    file = tmp_path / "last.pt"
    data = (one_step_run / "checkpoints" / "last.pt").read_bytes()
    file.write_bytes(data[:-30] + bytes(30))  # the end of the central directory zeroed
    with pytest.raises(ValueError, match=r"corrupted|not a BYOL checkpoint"):
        read_checkpoint(file)


def test_a_really_full_disk_while_saving_is_a_checkpoint_error(tiny_disk: Path) -> None:
    big = {"config": {}, "model": {"weight": torch.zeros(1 << 20)}}  # 4 MiB on a 256 KiB disk
    with pytest.raises(CheckpointError) as raised:
        save_checkpoint(big, tiny_disk / "last.pt")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"could not write checkpoint {tiny_disk / 'last.pt'}: ")
    assert "no space left on device" in message.lower()
    assert list(tiny_disk.iterdir()) == []  # no temporary left


def test_training_onto_a_full_disk_stops_with_one_line(
    tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_train(tiny_disk, "--data.max_images", "64", "--train.run_name", "full")
    assert status == 1
    line = one_error_line(capsys)
    assert line.startswith("byol: stopped: could not write checkpoint ")
    assert "no space left on device" in line.lower()
    assert not [p for p in (tiny_disk / "runs" / "full" / "checkpoints").iterdir()]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_checkpoints_and_exports_follow_the_umask(
    one_step_run: Path, tmp_path: Path, umask: int
) -> None:
    previous = os.umask(umask)
    try:
        state = read_checkpoint(one_step_run)
        saved = save_checkpoint(
            {"config": state["config"], "model": state["model"]}, tmp_path / "c.pt"
        )
        assert (
            main(
                [
                    "export",
                    "--checkpoint",
                    str(one_step_run),
                    "--out",
                    str(tmp_path / "e"),
                    "--no-onnx",
                ]
            )
            == 0
        )
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for file in [saved, *(tmp_path / "e").iterdir()]:
        assert stat.S_IMODE(file.stat().st_mode) == expected, file
    assert stat.S_IMODE((tmp_path / "e").stat().st_mode) == 0o777 & ~umask
    # The run's own checkpoints (written before this test, under the default umask 0o022).
    assert stat.S_IMODE((one_step_run / "checkpoints" / "last.pt").stat().st_mode) & 0o044 == 0o044
