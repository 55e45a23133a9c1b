"""Run-folder logs: ``metrics.csv`` (read by the report) and TensorBoard event files.

TensorBoard is optional (``pip install byol[tensorboard]``): without it only ``metrics.csv``
is written, and the first run of the process says how to turn the event files on.
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path
from typing import Any

from byol.atomic import write_text

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
    """Keep the header and the complete rows of ``path`` logged at or before ``step``.

    Lines that are not UTF-8 text or not a row (binary junk) are dropped with a warning
    naming the file, so they never block a resume.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(
            f"cannot read {path} ({error.strerror}); fix or move the file, then resume"
        ) from error
    lines = raw.splitlines(keepends=True)
    if not lines or not lines[0].endswith(b"\n") or not lines[0].startswith(b"step,"):
        path.unlink()  # not even a complete header: start the file again
        return
    kept, dropped = [lines[0].decode("ascii", errors="replace")], 0
    for line in lines[1:]:
        if not line.endswith(b"\n"):
            break  # cut short by the crash
        row_step = _row_step(line)
        if row_step is None:
            dropped += 1
        elif row_step <= step:
            kept.append(line.decode("ascii"))
    if dropped:
        warnings.warn(
            f"{path}: dropped {dropped} lines that are not metric rows (binary junk?)",
            stacklevel=3,
        )
    write_text(path, "".join(kept))


def _row_step(line: bytes) -> int | None:
    """The step of a metrics row, or None for a line that is no row."""
    try:
        text = line.decode("ascii")
        row = next(csv.reader([text]), [])
        return int(row[0])
    except (UnicodeDecodeError, IndexError, ValueError, csv.Error):
        return None
