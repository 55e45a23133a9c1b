"""Kill ``byol train`` (SIGKILL) at random moments and resume it each time: it must continue
from the last complete checkpoint and end with exactly the weights of an uninterrupted run.

Moments are seeded and found by watching the run folder, not by fixed delays, so they land
where they are meant to on a slow or busy machine: before the first checkpoint, inside a step,
inside a checkpoint write (a ``.last.pt.partial-*`` temporary file exists), and right at an
epoch boundary. Every process runs single-threaded: CPU float sums depend on the thread count,
and the comparison is bit for bit.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from byol.checkpoint import PARTIAL_MARK, read_checkpoint
from byol.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

KILLS = 10
EPOCHS = 12  # 256 images / batch 64 = 4 steps per epoch: 48 steps
FLAGS = [
    "--preset", "digits",
    "--model.backbone", "small_resnet18_w8",
    "--model.projector_hidden_dim", "64",
    "--model.predictor_hidden_dim", "64",
    "--model.projection_dim", "32",
    "--augment.image_size", "16",
    "--optim.batch_size", "64",
    "--data.max_images", "256",
    "--data.num_workers", "0",
    "--data.val_source", "null",
    "--monitor.knn_every_epochs", "0",
    "--train.epochs", str(EPOCHS),
    "--train.accelerator", "cpu",
    "--train.precision", "32-true",
    "--train.deterministic", "true",
    "--train.log_every_steps", "3",
    "--train.checkpoint_every_epochs", "1",
    "--train.checkpoint_every_steps", "2",
    "--no-progress",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _spawn(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "byol.cli.main", "train", *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=ENV,
        )


def _partial_files(checkpoints: Path) -> list[str]:
    try:
        return [name for name in os.listdir(checkpoints) if PARTIAL_MARK in name]
    except FileNotFoundError:
        return []


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class Watcher:
    """Polls a run folder while one training process lives."""

    def __init__(self, process: subprocess.Popen[bytes], run_dir: Path) -> None:
        self.process, self.run_dir = process, run_dir
        self.checkpoints = run_dir / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.initial = _identity(self.last)
        self.seen: set[tuple[int, int]] = set()

    def writes(self) -> int:
        """New versions of last.pt seen since the process started (each write is a rename)."""
        identity = _identity(self.last)
        if identity is not None and identity != self.initial:
            self.seen.add(identity)
        return len(self.seen)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 90.0) -> bool:
        """True once ``condition`` holds; False if the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.writes()
            if condition():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.0005)
        raise AssertionError(f"nothing happened in {timeout} s; see {self.run_dir}")


def _kill_at(moment: str, watcher: Watcher, rng: random.Random) -> bool:
    """SIGKILL the process at ``moment``; False if it finished before that moment came."""
    if moment == "before first checkpoint":
        reached = watcher.wait_for(lambda: (watcher.run_dir / "config.yaml").exists())
    elif moment == "inside a step":
        reached = watcher.wait_for(lambda: watcher.writes() >= 1)
        time.sleep(rng.uniform(0.0, 0.15))  # 0 to ~2 steps past a checkpoint
    elif moment == "inside a checkpoint write":
        # After one complete checkpoint of this process, so every process makes progress.
        reached = watcher.wait_for(lambda: watcher.writes() >= 1) and watcher.wait_for(
            lambda: bool(_partial_files(watcher.checkpoints)) or watcher.writes() >= 4
        )
    else:  # at an epoch boundary: right after an epoch checkpoint appeared
        epochs = len(list(watcher.checkpoints.glob("epoch-*.pt")))
        reached = watcher.wait_for(
            lambda: len(list(watcher.checkpoints.glob("epoch-*.pt"))) > epochs
        )
    if not reached:
        return False
    watcher.process.kill()
    watcher.process.wait()
    return True


def _logged_steps(run_dir: Path) -> list[int]:
    with (run_dir / "metrics.csv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle) if row["loss"]]


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = ["--data.cache_dir", str(tmp_path / "cache"), "--train.output_dir", str(tmp_path)]
    reference = _spawn([*FLAGS, *output, "--train.run_name", "reference"], tmp_path / "ref.log")
    run_dir = tmp_path / "killed"
    log = tmp_path / "killed.log"
    rng = random.Random(20261125)
    moments = ["inside a step", "inside a checkpoint write", "at an epoch boundary"] * 3
    rng.shuffle(moments)
    moments = ["before first checkpoint", *moments]
    assert len(moments) == KILLS

    process = _spawn([*FLAGS, *output, "--train.run_name", "killed"], log)
    last_step, mid_write, restarted = -1, 0, 0
    for moment in moments:
        assert _kill_at(moment, Watcher(process, run_dir), rng), (
            f"the run finished before the kill '{moment}'; give it more steps"
        )
        mid_write += bool(_partial_files(run_dir / "checkpoints"))
        last = run_dir / "checkpoints" / "last.pt"
        if last.exists():  # never torn, never older than before
            state = read_checkpoint(last)
            assert state["step"] >= last_step
            assert all(torch.isfinite(t).all() for t in state["model"].values())
            last_step = state["step"]
        else:
            restarted += 1
        process = _spawn(["--resume", str(run_dir), "--no-progress"], log)
    assert process.wait(timeout=180) == 0, log.read_text()[-3000:]
    assert reference.wait(timeout=180) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    expected = read_checkpoint(tmp_path / "reference" / "checkpoints" / "final.pt")
    actual = read_checkpoint(run_dir / "checkpoints" / "final.pt")
    assert actual["step"] == expected["step"] == EPOCHS * 4
    assert actual["model"].keys() == expected["model"].keys()
    for key, tensor in expected["model"].items():
        assert torch.equal(tensor, actual["model"][key]), key
    # metrics.csv continues sensibly: each log step once, as in the uninterrupted run.
    assert _logged_steps(run_dir) == _logged_steps(tmp_path / "reference")
    # Nothing lost: every epoch checkpoint of the uninterrupted run exists, no temporary file.
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "reference" / "checkpoints").iterdir())
    assert restarted == 1  # the first kill came before any checkpoint: started again cleanly
    assert mid_write >= 1  # at least one kill landed while a checkpoint was being written
    with capsys.disabled():  # the figure for `pytest -s`
        print(f"\n{KILLS} kills survived, {mid_write} of them inside a checkpoint write")

    # Resuming the finished run does nothing and says so.
    final = run_dir / "checkpoints" / "final.pt"
    before = _identity(final)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "already finished (48 steps); nothing to do" in capsys.readouterr().out
    assert _identity(final) == before
