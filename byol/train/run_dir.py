"""Run folders: ``<output_dir>/<run_name>/`` with config, logs and checkpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from byol.config import Config


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"


def prepare_run_folder(config: Config, resume: str | Path | None, create: bool) -> RunFolder:
    """The folder of this run: the resumed one, or a new ``output_dir/run_name``.

    A new run never writes into a folder that already holds a run; it asks for ``--resume``
    or another name instead.
    """
    if resume is not None:
        resumed = Path(resume)
        path = resumed if resumed.is_dir() else resumed.parent.parent
    else:
        name = config.train.run_name or time.strftime("byol-%Y%m%d-%H%M%S")
        path = Path(config.train.output_dir).expanduser() / name
        if create and (path / "checkpoints").exists():
            raise ValueError(
                f"run folder {path} already holds a run; resume it with --resume {path} "
                "or choose another train.run_name"
            )
    folder = RunFolder(path)
    if create:
        folder.checkpoints.mkdir(parents=True, exist_ok=True)
    return folder
