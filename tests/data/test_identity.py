"""A resume on other data than the checkpoint was trained on is refused, naming the change."""

from __future__ import annotations

from pathlib import Path

import pytest

from byol.checkpoint import read_checkpoint
from byol.cli.main import main
from tests.helpers import noise_images, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_resume_after_half_the_images_were_deleted_is_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = noise_images(tmp_path / "images", 32)
    # 4 steps per epoch, stopped after 2 of the 3 epochs' steps.
    assert run_train(tmp_path, str(tmp_path / "images"), "--train.max_steps", "6") == 0
    run_dir = tmp_path / "runs" / "run"
    saved = read_checkpoint(run_dir)["data"]
    assert saved["num_images"] == 32 and len(saved["fingerprint"]) == 64
    # The same data resumes (nothing to do: it finished).
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    for image in images[::2]:
        image.unlink()
    (run_dir / "checkpoints" / "final.pt").unlink()  # as if killed before the end
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "changed since checkpoint" in line and "32 images then, 16 now" in line
    assert "--allow-data-change" in line
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
    status = main(["train", "--resume", str(run_dir), "--no-progress", "--allow-data-change"])
    assert status == 0
    assert read_checkpoint(run_dir)["data"]["num_images"] == 16


def test_same_count_other_files_is_a_change_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = noise_images(tmp_path / "images", 16)
    assert run_train(tmp_path, str(tmp_path / "images"), "--train.max_steps", "1") == 0
    images[0].rename(images[0].with_name("renamed.png"))
    capsys.readouterr()
    run_dir = tmp_path / "runs" / "run"
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    assert "file names or sizes differ (fingerprint" in one_error_line(capsys)
