"""Run-folder logs: ``metrics.csv`` (read by the report) and TensorBoard event files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

METRIC_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "lr",
    "tau",
    "projection_std",
    "effective_rank",
    "images_per_second",
    "knn_top1",
    "knn_top5",
)


class RunLog:
    """Appends metric rows to ``run_dir/metrics.csv`` and TensorBoard scalars.

    Rows are sparse: k-NN columns are filled only when a k-NN evaluation ran. Opening an existing
    file appends, so a resumed run continues the same log.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.csv"
        new_file = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        if new_file:
            self._writer.writeheader()
        self._tensorboard: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                self._tensorboard = None

    def write(self, row: dict[str, float | int]) -> None:
        self._writer.writerow(row)
        self._file.flush()
        if self._tensorboard is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self._tensorboard.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
