"""Run-folder logs: ``metrics.csv`` (read by the report) and TensorBoard event files.

TensorBoard is optional (``pip install byol[tensorboard]``): without it only ``metrics.csv``
is written, and the first run of the process says how to turn the event files on.
"""

from __future__ import annotations

import csv
import os
import sys
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
    "nonfinite_skipped",
    "online_train_top1",
    "online_test_top1",
    "online_test_top5",
)
TENSORBOARD_MISSING = (
    "byol: TensorBoard logs are off because tensorboard is not installed (metrics.csv has the "
    "same figures); to turn them on: pip install 'byol[tensorboard]'"
)
_told_tensorboard_missing = False


class RunLog:
    """Appends metric rows to ``run_dir/metrics.csv`` and TensorBoard scalars.

    Rows are sparse: k-NN columns are filled only when a k-NN evaluation ran. Opening an existing
    file appends, so a resumed run continues the same log. ``resume_step``: the step the run
    continues from; rows logged after it by the interrupted process (the resumed run logs those
    steps again) and a row the crash cut short are dropped first, and TensorBoard hides its
    events after that step (``purge_step``).
    """

    def __init__(
        self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None
    ) -> None:
        self.path = run_dir / "metrics.csv"
        if resume_step is not None and self.path.exists():
            _drop_rows_after(self.path, resume_step)
        new_file = not self.path.exists()
        # A resumed run keeps the columns its file started with, so every row fits the header.
        columns = METRIC_COLUMNS if new_file else _header(self.path)
        self._file = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        if new_file:
            self._writer.writeheader()
        self._tensorboard: Any = None
        if tensorboard:
            self._tensorboard = _summary_writer(run_dir, resume_step)

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


def _header(path: Path) -> tuple[str, ...]:
    with path.open(newline="") as handle:
        return tuple(next(csv.reader(handle), METRIC_COLUMNS))


def _summary_writer(run_dir: Path, resume_step: int | None) -> Any:
    """A TensorBoard writer for ``run_dir/tensorboard``, or None (said once per process) when
    tensorboard is not installed."""
    global _told_tensorboard_missing
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if not _told_tensorboard_missing:
            print(TENSORBOARD_MISSING, file=sys.stderr)
            _told_tensorboard_missing = True
        return None
    purge_step = None if resume_step is None else resume_step + 1
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)


def _drop_rows_after(path: Path, step: int) -> None:
    """Keep the header and the complete rows of ``path`` logged at or before ``step``."""
    lines = path.read_text().splitlines(keepends=True)
    if not lines or not lines[0].endswith("\n"):
        path.unlink()  # not even a complete header: start the file again
        return
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.endswith("\n"):
            break  # cut short by the crash
        row = next(csv.reader([line]), [])
        try:
            row_step = int(row[0])
        except (IndexError, ValueError):
            continue
        if row_step <= step:
            kept.append(line)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temporary.write_text("".join(kept))
    os.replace(temporary, path)
