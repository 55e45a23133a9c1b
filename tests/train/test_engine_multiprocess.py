"""``byol train`` in two real processes (Fabric's DDP over gloo, on the CPU).

Every run goes through the command line in a subprocess, as a user runs it: Fabric starts the
second process by running the same command again. The global batch stays 32 throughout, so a
run on two processes (16 images each) must follow the single-process run step for step: same
batches, same views, BatchNorm over the global batch, the same learning rate. Processes are
single-threaded so that float sums do not depend on the thread count, and the learning rate is
low so that float rounding differences (the gradient all-reduce sums in another order) stay at
rounding level for the few steps compared. The optimiser is pinned (LARS without the trust
clip): with the clip, or with plain SGD, the first steps of this tiny network amplify rounding
so much that one process on two threads instead of one already moves the loss by 1e-3 within
four steps, which would hide what these tests check.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from byol.checkpoint import read_checkpoint

STEPS_PER_EPOCH = 4  # 128 images / global batch 32
FLAGS = [
    "digits",
    "--no-progress",
    "--model.backbone", "small_resnet18_w8",
    "--model.projector_hidden_dim", "64",
    "--model.predictor_hidden_dim", "64",
    "--model.projection_dim", "32",
    "--augment.image_size", "16",
    "--optim.batch_size", "32",
    "--optim.optimizer", "lars",
    "--optim.base_learning_rate", "0.02",
    "--optim.lars_eta", "0.02",
    "--optim.lars_trust_clip", "false",
    "--optim.weight_decay", "1e-5",
    "--optim.warmup_epochs", "0.5",
    "--data.max_images", "128",
    "--data.num_workers", "0",
    "--data.val_source", "null",
    "--monitor.knn_every_epochs", "0",
    "--train.epochs", "2",
    "--train.log_every_steps", "1",
    "--train.checkpoint_every_epochs", "1",
    "--train.precision", "32-true",
    "--train.deterministic", "true",
    "--train.accelerator", "cpu",
]  # fmt: skip
# Launcher and cluster variables of an enclosing job would make Fabric join it instead.
FOREIGN_ENVIRONMENT = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "NODE_RANK",
)


def _environment() -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_ENVIRONMENT
        and not key.startswith(("SLURM_", "TORCHELASTIC_", "PL_", "LT_"))
    }
    environment["OMP_NUM_THREADS"] = "1"
    return environment


def _byol_train(*arguments: str, devices: int, cwd: Path, torchrun: bool = False) -> None:
    """``python -m byol.cli.main train ARGUMENTS`` on ``devices`` processes, started by Fabric
    or, with ``torchrun``, by ``torchrun --standalone --nproc_per_node DEVICES``."""
    launcher = [sys.executable, "-m"]
    if torchrun:
        launcher += ["torch.distributed.run", "--standalone", f"--nproc_per_node={devices}", "-m"]
    command = [*launcher, "byol.cli.main", "train", *arguments, "--train.devices", str(devices)]
    if devices > 1:
        command += ["--train.strategy", "ddp"]
    done = subprocess.run(
        command, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Only rank 0 reports.
    assert done.stdout.count("run folder:") == 1, done.stdout


def _new_run(root: Path, name: str, devices: int, *extra: str, torchrun: bool = False) -> Path:
    flags = [*FLAGS, "--data.cache_dir", str(root / "cache"), "--train.output_dir", str(root)]
    flags += ["--train.run_name", name, *extra]
    _byol_train(*flags, devices=devices, cwd=root, torchrun=torchrun)
    return root / name


def _resume_after_epoch_1(run: Path, name: str, devices: int) -> Path:
    """Continue ``run`` from its first epoch checkpoint in a new folder on ``devices``."""
    folder = run.parent / name
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "epoch-0001.pt", folder / "checkpoints" / "last.pt")
    _byol_train("--resume", str(folder), "--no-progress", devices=devices, cwd=run.parent)
    return folder


def _metrics(run: Path) -> dict[int, dict[str, float]]:
    with (run / "metrics.csv").open() as handle:
        return {
            int(row["step"]): {key: float(row[key]) for key in ("loss", "lr", "tau")}
            for row in csv.DictReader(handle)
            if row.get("loss")
        }


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run / "checkpoints" / "final.pt")["model"]


def _assert_same_trajectory(a: Path, b: Path, steps: list[int]) -> None:
    metrics_a, metrics_b = _metrics(a), _metrics(b)
    assert sorted(metrics_a) == sorted(metrics_b) == steps
    for step in steps:
        assert metrics_a[step]["lr"] == pytest.approx(metrics_b[step]["lr"], rel=1e-12)
        assert metrics_a[step]["tau"] == pytest.approx(metrics_b[step]["tau"], rel=1e-12)
        assert metrics_a[step]["loss"] == pytest.approx(metrics_b[step]["loss"], abs=2e-4), step


def _assert_same_weights(a: Path, b: Path, skip_batchnorm_buffers: bool = False) -> None:
    """Equal up to rounding: after 8 steps the runs measured here differ by < 1e-4 (rtol 1e-4
    on running variances), where unsynchronised BatchNorm moves weights by > 1e-2."""
    weights_a, weights_b = _weights(a), _weights(b)
    assert weights_a.keys() == weights_b.keys()
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    for key, tensor in weights_a.items():
        if skip_batchnorm_buffers and key.endswith(buffers):
            continue
        torch.testing.assert_close(weights_b[key], tensor, atol=2e-4, rtol=1e-4, msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One process with the global batch, and two processes with half of it each (started by
    torchrun here; the other two-process runs below are started by Fabric itself)."""
    root = tmp_path_factory.mktemp("multiprocess")
    return {
        "one": _new_run(root, "one", devices=1),
        "two": _new_run(root, "two", devices=2, torchrun=True),
    }


def test_two_processes_follow_the_single_process_run(runs: dict[str, Path]) -> None:
    steps = list(range(1, 2 * STEPS_PER_EPOCH + 1))
    _assert_same_trajectory(runs["one"], runs["two"], steps)
    # Every weight, BatchNorm running statistics and the EMA target included: the target is a
    # function of the online weights, which DDP keeps identical on both processes.
    _assert_same_weights(runs["one"], runs["two"])
    saved = read_checkpoint(runs["two"] / "checkpoints" / "final.pt")
    assert saved["config"]["train"]["devices"] == "2"
    assert saved["step"] == 2 * STEPS_PER_EPOCH


def test_only_rank_zero_writes_the_run_folder(runs: dict[str, Path]) -> None:
    checkpoints = sorted(p.name for p in (runs["two"] / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0001.pt", "final.pt", "last.pt"]
    with (runs["two"] / "metrics.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["loss"]]
    assert len(rows) == 2 * STEPS_PER_EPOCH  # one loss row per step, written once


def test_checkpoint_of_two_processes_resumes_in_one_and_back(runs: dict[str, Path]) -> None:
    two_then_one = _resume_after_epoch_1(runs["two"], "two-then-one", devices=1)
    _assert_same_weights(runs["one"], two_then_one)
    one_then_two = _resume_after_epoch_1(runs["one"], "one-then-two", devices=2)
    _assert_same_weights(runs["two"], one_then_two)
    resumed_steps = list(range(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH + 1))
    assert sorted(_metrics(one_then_two)) == resumed_steps


def test_accumulation_normalises_micro_batches_as_unsynchronised_processes(
    runs: dict[str, Path],
) -> None:
    # Two micro-batches on one process see the same halves of the global batch as two
    # processes whose BatchNorm is not synchronised: each half is normalised on its own, the
    # gradient is the mean of the halves' gradients, and one optimiser step follows.
    root = runs["one"].parent
    accumulated = _new_run(root, "accumulated", 1, "--optim.gradient_accumulation_steps", "2")
    unsynchronised = _new_run(root, "unsynchronised", 2, "--model.sync_batchnorm", "false")
    steps = list(range(1, 2 * STEPS_PER_EPOCH + 1))
    _assert_same_trajectory(accumulated, unsynchronised, steps)
    # Running statistics differ (two updates per step against one per process).
    _assert_same_weights(accumulated, unsynchronised, skip_batchnorm_buffers=True)
    # And per-micro-batch statistics are not those of the global batch.
    first_full, first_accumulated = _metrics(runs["one"])[1], _metrics(accumulated)[1]
    assert abs(first_full["loss"] - first_accumulated["loss"]) > 1e-3
    # Synchronisation matters far beyond the tolerance of the comparisons above.
    synchronised, unsynchronised_weights = _weights(runs["one"]), _weights(unsynchronised)
    gap = max(
        float((tensor - unsynchronised_weights[key]).abs().max())
        for key, tensor in synchronised.items()
        if tensor.is_floating_point() and not key.endswith(("running_mean", "running_var"))
    )
    assert gap > 5e-3


def test_two_processes_with_two_workers_each_stream_tar_shards(runs: dict[str, Path]) -> None:
    root = runs["one"].parent
    shards = root / "shards"
    sizes = ["--images-per-shard", "16", "--max-images", "128"]
    command = [sys.executable, "-m", "byol.cli.main", "shard", "digits", "--out", str(shards)]
    subprocess.run([*command, *sizes], check=True, env=_environment(), capture_output=True)
    # 8 shards: 2 per data worker of each process; 32 images per worker = 2 batches of 16.
    flags = [str(shards), *FLAGS[1:], "--data.max_images", "null", "--data.num_workers", "2"]
    flags += ["--train.output_dir", str(root), "--train.run_name", "streamed"]
    flags += ["--data.cache_dir", str(root / "cache"), "--train.epochs", "1"]
    _byol_train(*flags, devices=2, cwd=root)
    assert sorted(_metrics(root / "streamed")) == list(range(1, STEPS_PER_EPOCH + 1))
