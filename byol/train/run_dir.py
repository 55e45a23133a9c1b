"""Run folders: ``<output_dir>/<run_name>/`` with config, logs and checkpoints.

Resuming (``byol train --resume RUN_DIR``) reads ``checkpoints/last.pt``, the newest complete
checkpoint (checkpoints are written atomically, so a crash never leaves a torn one). A run
killed before its first checkpoint has only ``config.yaml``: it starts again from step 0 with
that configuration, in the same folder.

A run folder is only ever a folder holding ``config.yaml`` and ``checkpoints/``. A new one is
made whole: a temporary sibling gets both, then is renamed into place, so a crash never leaves
a half-made folder (one left by an older byol, ``checkpoints/`` without ``config.yaml`` and no
checkpoint in it, is replaced by the next run of that name). A checkpoint file outside a run
folder (``~/Downloads/last.pt``) starts a new run from its weights and training state; its
surroundings are never adopted. While a process trains in a run folder it holds an exclusive
lock on ``run_dir/.lock`` (``fcntl.flock``), and a second process is refused with the holder's
PID.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from byol.atomic import (
    PARTIAL_MARK,
    folder_mode,
    remove_stale_temporaries,
    temporary_prefix,
    write_text,
)
from byol.checkpoint import (
    RUN_CHECKPOINT,
    CheckpointError,
    config_from_checkpoint,
    copy_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from byol.config import Config
from byol.config_io import apply_dotted, apply_mapping, load_yaml, save_config
from byol.train.errors import TrainingStopped

CONFIG_FILE = "config.yaml"
LOCK_FILE = ".lock"
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


@dataclass
class RunFolder:
    """A run's folder; ``lock`` is the open lock file while this process trains in it.

    ``created``: made by this process for a new run; ``started``: its first step was taken
    (until then a failed start removes the folder again).
    """

    path: Path
    lock: IO[str] | None = field(default=None, repr=False)
    created: bool = False
    started: bool = False

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def release(self, failed: bool = False) -> None:
        """Give up the folder's lock (closing the lock file releases the ``flock``); after a
        ``failed`` start of a new run, remove the folder it created."""
        if failed and self.created and not self.started:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.lock is not None:
            self.lock.close()
            self.lock = None


@dataclass(frozen=True)
class ResumedRun:
    """What ``--resume`` continues: the run's configuration and its training state.

    ``state`` is None for a run killed before its first checkpoint (it starts again); ``file``
    is then its ``config.yaml``, else the checkpoint read. ``origin`` names it in messages.
    ``run_dir``: the run folder continued, None for a checkpoint file outside any run folder
    (a new run starts from it).
    """

    config: Config
    state: dict[str, Any] | None
    file: Path
    origin: str
    run_dir: Path | None = None

    @property
    def step(self) -> int:
        return 0 if self.state is None else int(self.state["step"])


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds ``config.yaml`` and ``checkpoints/`` (what every run folder has)."""
    return (path / CONFIG_FILE).is_file() and (path / "checkpoints").is_dir()


def _is_torn(path: Path) -> bool:
    """A folder an older byol left when it crashed while creating it: ``checkpoints/`` with no
    checkpoint in it and no ``config.yaml``."""
    checkpoints = path / "checkpoints"
    if (path / CONFIG_FILE).exists() or not checkpoints.is_dir():
        return False
    return all(PARTIAL_MARK in child.name for child in checkpoints.iterdir())


def run_folder_of_file(file: Path) -> Path | None:
    """The run folder a checkpoint file belongs to (``RUN/checkpoints/x.pt``), or None."""
    parent = file.parent
    if parent.name == "checkpoints" and is_run_folder(parent.parent):
        return parent.parent
    return None


def load_resumed_run(resume: str | Path) -> ResumedRun:
    """Read the run ``resume`` names: a run folder (its ``checkpoints/last.pt``, else its
    ``config.yaml``) or a checkpoint file (of a run folder, or loose: then a new run starts).

    Raises:
        ValueError: nothing to resume there, or the checkpoint is unsafe, from a newer byol, or
            holds no training state (an exported or hand-made file).
    """
    path = Path(resume).expanduser()
    if path.is_dir() and not (path / RUN_CHECKPOINT).is_file():
        return _resume_without_checkpoint(path)
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
    config = config_from_checkpoint(state, origin)
    run_dir = path if path.is_dir() else run_folder_of_file(file)
    return ResumedRun(config, state, file, origin, run_dir)


def _resume_without_checkpoint(path: Path) -> ResumedRun:
    """A run folder with no ``last.pt``: a run killed before its first checkpoint."""
    config_path = path / CONFIG_FILE
    if _is_torn(path):
        raise ValueError(
            f"{path} holds an empty checkpoints/ and no {CONFIG_FILE}: its run crashed while the "
            "folder was being created; start that run again (a new run of this name replaces it)"
        )
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
    if not (path / "checkpoints").is_dir():
        raise ValueError(
            f"{path} holds {CONFIG_FILE} but no checkpoints/ folder, so it is not a run folder; "
            "pass the folder of a run started by byol train, or start a new run"
        )
    origin = f"run config {config_path}"
    try:
        config = apply_mapping(Config(), load_yaml(config_path))
    except ValueError as error:
        raise ValueError(f"{origin} cannot be used ({error})") from error
    return ResumedRun(config, None, config_path, origin, path)


def prepare_run_folder(
    config: Config, resumed: ResumedRun | None, create: bool, path: Path | None = None
) -> RunFolder:
    """The folder of this run, locked: the resumed one, or a new ``output_dir/run_name``.

    A new run never writes into a folder that already holds a run; it asks for ``--resume``
    or another name instead. A new folder is created whole, with ``config.yaml`` (see the
    module docstring). A resumed folder loses the temporary files of writes that a crash
    interrupted. ``create``: False in the other processes of a multi-process run, which only
    learn the ``path`` rank 0 chose.

    Raises:
        ValueError: the name is taken, the folder is no run folder, or another process trains
            in it (naming its PID).
    """
    if resumed is not None and resumed.run_dir is not None:
        folder = RunFolder(resumed.run_dir)
        if create:
            folder.lock = lock_run_folder(folder.path)
            # The temporary files of writes that a crash cut short.
            remove_stale_temporaries(folder.checkpoints, everything=True)
            remove_stale_temporaries(folder.path, everything=True)  # config.yaml, metrics.csv
        return folder
    if not create:
        return RunFolder(path if path is not None else _run_path(config, config.train.run_name))
    if resumed is not None:  # a loose checkpoint: never the saved name of the run it came from
        config.train.run_name = None
    folder = create_run_folder(config)
    if resumed is not None:
        print(
            f"byol: {resumed.file} is not inside a run folder (RUN/checkpoints/); starting a "
            f"new run in {folder.path} from its weights and training state",
            file=sys.stderr,
        )
    return folder


def _run_path(config: Config, name: str | None) -> Path:
    return Path(config.train.output_dir).expanduser() / (name or "byol")


def _default_names() -> Any:
    stamp = time.strftime("byol-%Y%m%d-%H%M%S")
    yield stamp
    for suffix in range(2, 10_000):
        yield f"{stamp}-{suffix}"


def create_run_folder(config: Config) -> RunFolder:
    """Make ``output_dir/run_name`` (or a unique ``byol-<date>-<time>[-N]``) atomically, with
    ``config.yaml`` and ``checkpoints/``, and lock it."""
    base = Path(config.train.output_dir).expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"train.output_dir {base} cannot be created ({error.strerror}); set "
            "train.output_dir to a writable folder"
        ) from error
    remove_stale_temporaries(base)
    explicit = config.train.run_name
    for name in [explicit] if explicit else _default_names():
        path = base / name
        if explicit:
            _check_free(path)
        elif path.exists():
            continue
        temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), dir=base))
        try:
            temporary.chmod(folder_mode())
            (temporary / "checkpoints").mkdir()
            save_config(config, temporary / CONFIG_FILE)
            lock = lock_run_folder(temporary)
            try:
                os.rename(temporary, path)  # fails when another process took the name
            except OSError as error:
                lock.close()
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or explicit:
                    raise ValueError(_taken(path)) from error
                continue
            return RunFolder(path, lock, created=True)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    raise ValueError(f"no free run name in {base}; set train.run_name")


def _check_free(path: Path) -> None:
    """Raise unless a new run may take ``path``: missing, empty, or torn (then emptied)."""
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"{path} is a file; choose another train.run_name or train.output_dir")
    if _is_torn(path):
        shutil.rmtree(path)
        return
    if any(path.iterdir()):
        raise ValueError(_taken(path))


def _taken(path: Path) -> str:
    if (path / "checkpoints").exists() or (path / CONFIG_FILE).exists():
        return (
            f"run folder {path} already holds a run; resume it with --resume {path} "
            "or choose another train.run_name"
        )
    return (
        f"{path} exists and is not a run folder (no {CONFIG_FILE} and checkpoints/); choose "
        "another train.run_name or train.output_dir"
    )


def lock_run_folder(path: Path) -> IO[str]:
    """Lock ``path/.lock`` for this process (``fcntl.flock``); returns the open file.

    Raises:
        ValueError: another process holds it, naming its PID.
    """
    lock_path = path / LOCK_FILE
    handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise ValueError(
            f"run folder {path} is in use by process {holder} (lock {lock_path}); wait for it "
            "to finish or stop that process, then try again"
        ) from error
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


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


def save_run_checkpoint(state: dict[str, Any], folder: RunFolder, name: str) -> None:
    """Write ``state`` to ``checkpoints/last.pt``, then copy it to ``checkpoints/<name>``.

    Raises:
        TrainingStopped: the file could not be written, with how to continue.
    """
    last = folder.checkpoints / "last.pt"
    try:
        save_checkpoint(state, last)
        if name != last.name:
            copy_checkpoint(last, folder.checkpoints / name)
    except CheckpointError as error:
        raise TrainingStopped(
            f"{error}. Free space (or fix the folder) and continue with "
            f"byol train --resume {folder.path}"
        ) from error


def write_skipped_images(run_dir: Path, skipped: list[tuple[str, str]]) -> Path | None:
    """List the unreadable image files left out, one ``path<TAB>reason`` per line, in
    ``run_dir/skipped_images.txt``; returns the file, or None (and no file) when none were."""
    path = run_dir / SKIPPED_IMAGES_FILE
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    write_text(path, "".join(f"{file}\t{reason}\n" for file, reason in skipped))
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
