"""Run folders: ``<output_dir>/<run_name>/`` with config, logs and checkpoints.

Resuming (``byol train --resume RUN_DIR``) reads ``checkpoints/last.pt``, the newest complete
checkpoint (checkpoints are written atomically, so a crash never leaves a torn one). A run
killed before its first checkpoint has only ``config.yaml``: it starts again from step 0 with
that configuration, in the same folder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byol.checkpoint import (
    RUN_CHECKPOINT,
    copy_checkpoint,
    read_checkpoint,
    remove_partial_files,
)
from byol.config import Config
from byol.config_io import apply_dotted, apply_mapping, load_yaml

CONFIG_FILE = "config.yaml"
SKIPPED_IMAGES_FILE = "skipped_images.txt"
# What a checkpoint needs, besides the weights and config, to continue training.
TRAINING_STATE_KEYS = ("optimizer", "step", "epoch", "batch_in_epoch")
# What a resumed run may change: where and how it runs, never what it computes (the global
# batch, schedules and augmentations do not depend on the number of processes).
RESUME_OVERRIDES = (
    "train.accelerator",
    "train.devices",
    "train.num_nodes",
    "train.strategy",
    "train.log_every_steps",
    "data.num_workers",
    "data.cache_dir",
)


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"


@dataclass(frozen=True)
class ResumedRun:
    """What ``--resume`` continues: the run's configuration and its training state.

    ``state`` is None for a run killed before its first checkpoint (it starts again); ``file``
    is then its ``config.yaml``, else the checkpoint read. ``origin`` names it in messages.
    """

    config: Config
    state: dict[str, Any] | None
    file: Path
    origin: str

    @property
    def step(self) -> int:
        return 0 if self.state is None else int(self.state["step"])


def load_resumed_run(resume: str | Path) -> ResumedRun:
    """Read the run ``resume`` names: a run folder (its ``checkpoints/last.pt``, else its
    ``config.yaml``) or a checkpoint file.

    Raises:
        ValueError: nothing to resume there, or the checkpoint is unsafe, from a newer byol, or
            holds no training state (an exported or hand-made file).
    """
    path = Path(resume).expanduser()
    if path.is_dir() and not (path / RUN_CHECKPOINT).is_file():
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise ValueError(
                f"{path} holds no run to resume (neither {RUN_CHECKPOINT} nor {CONFIG_FILE}); "
                "pass the folder of a run started by byol train, or start a new run"
            )
        others = sorted(p.name for p in (path / "checkpoints").glob("*.pt"))
        if others:  # not a run killed early: never start it again over its checkpoints
            raise ValueError(
                f"{path} has no {RUN_CHECKPOINT} but other checkpoints ({', '.join(others)}); "
                f"resume from one of them with --resume {path / 'checkpoints' / others[-1]}"
            )
        origin = f"run config {config_path}"
        try:
            config = apply_mapping(Config(), load_yaml(config_path))
        except ValueError as error:
            raise ValueError(f"{origin} cannot be used ({error})") from error
        return ResumedRun(config, None, config_path, origin)
    file = path / RUN_CHECKPOINT if path.is_dir() else path
    state = read_checkpoint(file)
    origin = f"checkpoint {file}"
    missing = [key for key in TRAINING_STATE_KEYS if key not in state]
    if missing:
        raise ValueError(
            f"{origin} holds no training state ({', '.join(missing)} missing), so it cannot be "
            "resumed; pass a run folder or a checkpoint written by byol train"
        )
    position = [state[key] for key in ("step", "epoch", "batch_in_epoch")]
    position.append(state.get("nonfinite_skipped", 0))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in position):
        raise ValueError(f"{origin} has an invalid training position (step, epoch, batch)")
    try:
        config = apply_mapping(Config(), state["config"])
    except ValueError as error:
        raise ValueError(f"{origin}: its saved config does not fit this byol ({error})") from error
    return ResumedRun(config, state, file, origin)


def prepare_run_folder(config: Config, resume: str | Path | None, create: bool) -> RunFolder:
    """The folder of this run: the resumed one, or a new ``output_dir/run_name``.

    A new run never writes into a folder that already holds a run; it asks for ``--resume``
    or another name instead. A resumed folder loses the temporary files of checkpoint writes
    that a crash interrupted.
    """
    if resume is not None:
        resumed = Path(resume).expanduser()
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
        if resume is not None:  # the temporary files of writes that a crash cut short
            remove_partial_files(folder.checkpoints)
            remove_partial_files(folder.path)  # config.yaml, metrics.csv
    return folder


def restore_epoch_checkpoint(folder: RunFolder, resumed: ResumedRun, every_epochs: int) -> None:
    """Copy a resumed epoch-end checkpoint to its ``epoch-NNNN.pt`` if that file is missing:
    a crash between writing ``last.pt`` and its named copy leaves only the former."""
    if resumed.state is None:
        return
    epoch, batch = resumed.state["epoch"], resumed.state["batch_in_epoch"]
    if epoch == 0 or batch != 0 or epoch % every_epochs:
        return
    named = folder.checkpoints / f"epoch-{epoch:04d}.pt"
    if not named.exists():
        copy_checkpoint(resumed.file, named)


def write_skipped_images(folder: RunFolder, skipped: list[tuple[str, str]]) -> Path | None:
    """List the unreadable image files left out, one ``path<TAB>reason`` per line, in
    ``run_dir/skipped_images.txt``; returns the file, or None (and no file) when none were."""
    path = folder.path / SKIPPED_IMAGES_FILE
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    path.write_text("".join(f"{file}\t{reason}\n" for file, reason in skipped))
    return path


def apply_resume_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Apply ``{"train.devices": 1, ...}`` to a resumed run's ``config`` (in place).

    Raises:
        ValueError: a key outside :data:`RESUME_OVERRIDES`, naming those allowed.
    """
    refused = [key for key in overrides if key not in RESUME_OVERRIDES]
    if refused:
        flags = ", ".join(f"--{key}" for key in refused)
        allowed = ", ".join(f"--{key}" for key in RESUME_OVERRIDES)
        raise ValueError(
            f"--resume continues a run with its saved configuration, so {flags} cannot change "
            f"it; a resumed run may change only {allowed}. Drop the others, or start a new run"
        )
    return apply_dotted(config, overrides)
