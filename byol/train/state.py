"""Where a run stands, and how a checkpoint's training state is put back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.optim import Optimizer

from byol.checkpoint import check_weights_fit


@dataclass
class TrainState:
    """The run's position: ``step`` optimiser steps done; ``epoch`` finished epochs;
    ``batch_in_epoch`` batches done of the current epoch; ``saved_step`` the step of the
    newest good checkpoint (None before the first)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    saved_step: int | None = None

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any]) -> TrainState:
        """The position a checkpoint recorded (checked by :func:`byol.train.run_dir.load_resumed_run`)."""
        return cls(state["step"], state["epoch"], state["batch_in_epoch"])

    def position(self) -> dict[str, int]:
        """What a checkpoint records to continue from here."""
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}


def load_training_state(
    model: nn.Module, optimizer: Optimizer, state: Mapping[str, Any], backbone: str, origin: str
) -> None:
    """Load a checkpoint's weights and optimiser state, naming what does not fit."""
    check_weights_fit(state["model"], model.state_dict(), backbone, origin)
    model.load_state_dict(state["model"])
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{origin}: its optimizer state does not fit the configured optimizer ({error})"
        ) from error
