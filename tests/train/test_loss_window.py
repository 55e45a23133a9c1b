"""Non-finite losses: ``train.nonfinite=stop`` stops with the step and keeps the last good
checkpoint; ``train.nonfinite=skip`` skips such steps on the device and counts them."""

from __future__ import annotations

import copy
import csv
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import byol.model
from byol.checkpoint import read_checkpoint
from byol.optim.lars import LARS
from byol.train.loss_window import LossWindow
from byol.train.step import zero_nonfinite_gradients_
from tests.helpers import one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")

# 64 digits in batches of 8: 8 steps per epoch, no epoch checkpoint within the run.
DIGITS = ["digits", "--data.max_images", "64", "--train.max_steps", "8"]


def _nan_loss_at(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> None:
    """Make the loss of the given (1-based) training steps NaN; so are their gradients."""
    original = byol.model.byol_loss
    calls = itertools.count(1)

    def loss(*tensors: Tensor) -> Tensor:
        value = original(*tensors)
        return value * math.nan if next(calls) in steps else value

    monkeypatch.setattr(byol.model, "byol_loss", loss)


def _finite(state: dict[str, Tensor]) -> bool:
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


@pytest.mark.parametrize(
    ("log_every", "checkpoint_every"),
    [(4, 2), (2, 4)],
    ids=["noticed before a checkpoint", "noticed at a log step"],
)
def test_stop_names_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_every: int,
    checkpoint_every: int,
) -> None:
    _nan_loss_at(monkeypatch, set(range(5, 100)))
    flags = ["--train.log_every_steps", str(log_every)]
    flags += ["--train.checkpoint_every_steps", str(checkpoint_every)]
    assert run_train(tmp_path, *DIGITS, *flags) == 1
    line = one_error_line(capsys)
    assert line.startswith("byol: stopped: the loss became non-finite at step 5 ")
    last = tmp_path / "runs" / "run" / "checkpoints" / "last.pt"
    assert f"the last good checkpoint ({last}, step 4) is kept" in line
    state = read_checkpoint(last)
    assert state["step"] == 4 and _finite(state["model"])
    assert not (last.parent / "final.pt").exists()


def test_weights_that_overflow_are_never_checkpointed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lr 1e6: the update after a finite loss overflows the weights; the loss looks fine.
    # (The trust clip would cap LARS steps at 2% of each weight's norm, whatever the lr.)
    flags = ["--optim.base_learning_rate", "1e6", "--optim.warmup_epochs", "0"]
    flags += ["--optim.lars_trust_clip", "false"]
    flags += ["--train.checkpoint_every_steps", "1", "--train.log_every_steps", "8"]
    assert run_train(tmp_path, *DIGITS, *flags) == 1
    line = one_error_line(capsys)
    assert "byol: stopped: a weight or optimizer state became non-finite by step " in line
    saved = read_checkpoint(tmp_path / "runs" / "run")
    assert f"step {saved['step']}) is kept" in line
    assert _finite(saved["model"]) and _finite(saved["optimizer"]["state"][0])


def test_skip_counts_the_skipped_steps_and_finishes_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _nan_loss_at(monkeypatch, {3, 4, 7})
    flags = ["--train.nonfinite", "skip", "--train.log_every_steps", "2"]
    flags += ["--train.checkpoint_every_steps", "2"]
    assert run_train(tmp_path, *DIGITS, *flags) == 0
    out = capsys.readouterr().out
    assert "skipped 3 steps with a non-finite loss or gradient" in out
    run_dir = tmp_path / "runs" / "run"
    with (run_dir / "metrics.csv").open() as handle:
        rows = {int(row["step"]): row for row in csv.DictReader(handle) if row["loss"]}
    assert [rows[s]["nonfinite_skipped"] for s in (2, 4, 6, 8)] == ["0", "2", "2", "3"]
    assert math.isnan(float(rows[4]["loss"]))  # every step of that window was skipped
    assert all(math.isfinite(float(rows[s]["loss"])) for s in (2, 6, 8))
    final = read_checkpoint(run_dir / "checkpoints" / "final.pt")
    assert final["step"] == 8 and _finite(final["model"])


def _model_and_lars() -> tuple[nn.Module, LARS]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 6, 6))
    model = model.to(memory_format=torch.channels_last)  # gradients in channels_last too
    optimizer = LARS(model.parameters(), lr=0.1, weight_decay=1e-4)
    loss = model(torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)).square().sum()
    loss.backward()
    optimizer.step()  # a momentum buffer to (not) pollute
    loss = model(torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)).square().sum()
    optimizer.zero_grad()
    loss.backward()
    return model, optimizer


def test_finite_step_keeps_every_gradient_bit_for_bit() -> None:
    model, optimizer = _model_and_lars()
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    applied = zero_nonfinite_gradients_(optimizer, torch.tensor(1.5))
    assert isinstance(applied, Tensor) and applied.dtype == torch.bool and bool(applied)
    after = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_nonfinite_step_moves_weights_as_a_zero_gradient_would(where: str) -> None:
    model, optimizer = _model_and_lars()
    reference, reference_optimizer = copy.deepcopy((model, optimizer))
    loss = torch.tensor(math.nan if where == "loss" else 2.0)
    if where == "gradient":
        next(model.parameters()).grad[1, 2, 0, 1] = math.inf  # type: ignore[index]
    assert not bool(zero_nonfinite_gradients_(optimizer, loss))
    optimizer.step()
    for parameter in reference.parameters():
        parameter.grad = torch.zeros_like(parameter)
    reference_optimizer.step()
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.isfinite(ours).all() and torch.equal(ours, theirs)
    for state in optimizer.state.values():
        assert torch.isfinite(state["momentum_buffer"]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to detect host syncs")
def test_skipping_and_loss_bookkeeping_never_sync_with_the_host() -> None:
    model = nn.Linear(8, 4).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    window = LossWindow(torch.device("cuda"))
    loss = model(torch.randn(16, 8, device="cuda")).square().mean()
    loss.backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        applied = zero_nonfinite_gradients_(optimizer, loss * math.nan)
        window.add(1, loss * math.nan, applied)
        window.add(2, loss, None)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert not bool(applied) and window.first_nonfinite() == 1
