"""Run folders: only a folder with config.yaml and checkpoints/ is one; they are made whole,
locked while trained in, never adopted from a loose checkpoint's surroundings, and a start
that fails leaves none behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from byol.checkpoint import read_checkpoint
from byol.cli.main import main
from byol.config import Config
from byol.train.run_dir import create_run_folder, lock_run_folder
from tests.helpers import noise_images, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_loose_checkpoint_starts_a_new_run_and_leaves_its_surroundings_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_train(tmp_path, "--data.max_images", "64") == 0
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir(parents=True)
    shutil.copy(tmp_path / "runs" / "run" / "checkpoints" / "last.pt", downloads / "last.pt")
    # Someone else's files next to the file and one level up.
    (tmp_path / "home" / "config.yaml").write_text("mine: true\n")
    (tmp_path / "home" / "metrics.csv").write_text("step,loss\n1,2\n5,3\n")
    before = {p: p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file()}
    capsys.readouterr()
    status = main(["train", "--resume", str(downloads / "last.pt"), "--no-progress"])
    assert status == 0
    err = capsys.readouterr().err
    assert f"{downloads / 'last.pt'} is not inside a run folder" in err
    assert "starting a new run in" in err
    after = {p: p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file()}
    assert after == before  # nothing overwritten, truncated or added
    assert not (tmp_path / "home" / "checkpoints").exists()
    new_runs = [p for p in (tmp_path / "runs").iterdir() if p.name != "run"]
    assert len(new_runs) == 1 and (new_runs[0] / "checkpoints" / "final.pt").is_file()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--optim.base_learning_rate",
            "-1",
            "optim.base_learning_rate=-1.0 must be greater than 0",
        ),
        ("--target.tau_base", "2", "target.tau_base=2.0 must be in [0, 1]"),
        ("--optim.batch_size", "0", "optim.batch_size=0 must be at least 1"),
        ("--augment.image_size", "0", "augment.image_size=0 must be at least 1"),
        ("--optim.base_learning_rate", ".nan", "optim.base_learning_rate=nan must be a finite"),
        ("--optim.weight_decay", "-0.1", "optim.weight_decay=-0.1 must be at least 0"),
        ("--model.backbone", "resnet_nonexistent", "resnet_nonexistent"),
        ("--optim.batch_size", "512", "larger than the"),
    ],
)
def test_bad_values_fail_before_any_run_folder_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert run_train(tmp_path, "--data.max_images", "64", flag, value) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "runs" / "run").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # The name is not trapped: the same run with good values starts.
    assert run_train(tmp_path, "--data.max_images", "64") == 0


def test_a_second_process_on_a_locked_run_folder_is_refused_with_the_holder_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_train(tmp_path, "--data.max_images", "64") == 0
    run_dir = tmp_path / "runs" / "run"
    holder = subprocess.Popen(  # another process trains in it: it holds the lock
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from pathlib import Path
                from byol.train.run_dir import lock_run_folder
                lock = lock_run_folder(Path({str(run_dir)!r}))
                print("locked", flush=True)
                time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
        line = one_error_line(capsys)
        assert f"run folder {run_dir} is in use by process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    lock = lock_run_folder(run_dir)  # released when its holder died
    lock.close()


def test_default_run_names_started_in_the_same_second_differ(tmp_path: Path) -> None:
    config = Config()
    config.train.output_dir = str(tmp_path)
    folders = [create_run_folder(config) for _ in range(3)]
    names = [folder.path.name for folder in folders]
    for folder in folders:
        folder.release()
    assert len(set(names)) == 3
    assert all((tmp_path / n / "config.yaml").is_file() for n in names)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_a_torn_folder_is_recognised_by_resume_and_replaced_by_a_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What an older byol left when killed between making checkpoints/ and config.yaml.
    torn = tmp_path / "runs" / "run"
    (torn / "checkpoints").mkdir(parents=True)
    assert main(["train", "--resume", str(torn)]) == 2
    assert "its run crashed while the folder was being created" in one_error_line(capsys)
    noise_images(tmp_path / "images", 16)
    assert run_train(tmp_path, str(tmp_path / "images")) == 0
    assert read_checkpoint(torn)["step"] == 1
