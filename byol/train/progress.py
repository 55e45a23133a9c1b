"""What a training run shows while it runs: a progress bar on a terminal, one compact line per
log interval elsewhere (pipes, CI logs), a warning when throughput collapses, and the CPU
thread count.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

import torch
from tqdm.auto import tqdm

PROJ_STD_HELP = (
    "proj-std: std of the L2-normalised projections over the batch, about 1/sqrt({dim}) = "
    "{spread:.3f} when spread out, 0 when collapsed"
)
# Lightning Fabric's INFO notice opening every mixed-precision run; the precision is in the
# run's config.yaml already.
_AMP_NOTICES = (
    "Using bfloat16 Automatic Mixed Precision",
    "Using 16-bit Automatic Mixed Precision",
)
_FABRIC_LOGGERS = ("lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropAmpNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_AMP_NOTICES)


_DROP_AMP_NOTICE = _DropAmpNotice()


def quiet_amp_notice() -> None:
    """Drop Fabric's "Using bfloat16 Automatic Mixed Precision (AMP)" line, nothing else it
    logs (a filter on the logger that emits it; adding it twice is a no-op)."""
    for name in _FABRIC_LOGGERS:
        logging.getLogger(name).addFilter(_DROP_AMP_NOTICE)


def resolve_num_threads(requested: int | None) -> int:
    """``train.num_threads``, or torch's default capped at the CPUs this process may run on
    (``os.sched_getaffinity``: a container's or ``taskset``'s share, not the machine's)."""
    if requested is not None:
        return requested
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        available = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), available))


def progress_lines_wanted(progress: bool, stream: TextIO | None = None) -> bool:
    """Plain lines instead of a bar: progress is on and ``stream`` (stderr) is no terminal,
    where a bar would print a fresh line per update."""
    stream = sys.stderr if stream is None else stream
    return progress and not stream.isatty()


def progress_line(
    step: int, total: int, loss: float, lr: float, tau: float, rate: float, std: float
) -> str:
    """``step 120/1000 (12%) loss 0.4123 lr 0.25 tau 0.9912 images/s 412 proj-std 0.081``."""
    return (
        f"step {step}/{total} ({step / max(total, 1):.0%}) loss {loss:.4f} lr {lr:.3g} "
        f"tau {tau:.4f} images/s {rate:.0f} proj-std {std:.3f}"
    )


def proj_std_help(projection_dim: int) -> str:
    """One line explaining the proj-std figure of the bar and the progress lines."""
    return PROJ_STD_HELP.format(dim=projection_dim, spread=1 / math.sqrt(projection_dim))


@dataclass
class ThroughputWatch:
    """Warns once when images/s stays below ``fraction`` of the first windows' best rate.

    The reference is the best of the first ``reference_windows`` log windows; a warning needs
    ``patience`` slow windows in a row, so one window slowed by a k-NN evaluation or a
    checkpoint does not count. A slow-down like that usually means another process competes
    for the CPU (or GPU).
    """

    fraction: float = 0.25
    reference_windows: int = 3
    patience: int = 2
    _rates: list[float] = field(default_factory=list)
    _slow: int = 0
    _warned: bool = False

    def update(self, rate: float) -> str | None:
        """Feed one window's images/s; returns the warning's text the first time it applies."""
        if len(self._rates) < self.reference_windows:
            self._rates.append(rate)
            return None
        reference = max(self._rates)
        self._slow = self._slow + 1 if rate < self.fraction * reference else 0
        if self._warned or self._slow < self.patience:
            return None
        self._warned = True
        return (
            f"throughput fell to {rate:.0f} images/s from {reference:.0f} in the first steps; "
            "another process probably competes for the CPU or GPU (set train.num_threads to "
            "the cores this run may use)"
        )


class ProgressDisplay:
    """What a person watching rank 0 sees: a bar on a terminal, one line per log window under a
    pipe or in a CI log (where a bar would print a line per update), messages, and a warning when
    throughput collapses. Silent when ``show`` is False (other ranks, ``progress=False``)."""

    def __init__(self, total_steps: int, initial_step: int, show: bool, projection_dim: int):
        self.total_steps = total_steps
        self.show = show
        self.lines = progress_lines_wanted(show)
        if show:
            print(proj_std_help(projection_dim), file=sys.stderr, flush=True)
        self.throughput = ThroughputWatch()
        self.bar = tqdm(
            total=total_steps,
            initial=initial_step,
            disable=not show or self.lines,
            desc="BYOL",
            unit="step",
            dynamic_ncols=True,
        )

    def write(self, message: str) -> None:
        """One line above the bar (or in the log)."""
        self.bar.write(message)

    def update(self, window: WindowFigures, skipped: int | None) -> str | None:
        """Show one log window; returns a slow-down warning's text the first time it applies."""
        self.bar.set_postfix(
            loss=f"{window.loss:.4f}",
            lr=f"{window.learning_rate:.3g}",
            tau=f"{window.tau:.4f}",
            img_s=f"{window.images_per_second:.0f}",
            proj_std=f"{window.projection_std:.3f}",
            **({"skipped": skipped} if skipped is not None else {}),
        )
        self.bar.update(window.steps)
        if self.lines:
            line = progress_line(
                window.step,
                self.total_steps,
                window.loss,
                window.learning_rate,
                window.tau,
                window.images_per_second,
                window.projection_std,
            )
            print(line, file=sys.stderr, flush=True)
        slow = self.throughput.update(window.images_per_second)
        return slow

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class WindowFigures:
    """One log window as shown and logged: ``steps`` steps ending at ``step``."""

    step: int
    steps: int
    loss: float
    learning_rate: float
    tau: float
    images_per_second: float
    projection_std: float
