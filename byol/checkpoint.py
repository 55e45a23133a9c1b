"""Checkpoint files: written atomically, read without running code.

A checkpoint is a dict of tensors and plain values saved with ``torch.save``:
``format_version``, ``config`` (the resolved config as nested dicts), ``model`` (state dict of
the whole :class:`~byol.model.BYOL`), and for resumption ``optimizer``, ``step``, ``epoch``,
``batch_in_epoch`` and ``nonfinite_skipped`` (no generator states: the engine's batches and
augmentations are functions of (seed, epoch, batch)). It is read with
``torch.load(weights_only=True)``, which refuses pickles that would construct arbitrary
objects, so a checkpoint from elsewhere cannot run code when loaded. Before that, every
member of the file's zip archive is checked against its CRC-32, so a corrupted file (flipped
bits, a torn copy) is refused with one line instead of loading damaged weights.

Checkpoints are written with :mod:`byol.atomic` (temporary file, fsync, rename) and get the
permissions of any new file (``0o666`` minus the umask).
"""

from __future__ import annotations

import errno
import pickle
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

from byol.atomic import PARTIAL_MARK as PARTIAL_MARK
from byol.atomic import WriteError, remove_stale_temporaries, write_atomically

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "config", "model")
# Where a training run keeps its latest checkpoint, relative to the run folder.
RUN_CHECKPOINT = Path("checkpoints") / "last.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason and what to do."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then rename.

    A crash (or a full disk) during the write leaves the previous file at ``path`` intact; the
    temporary file (``.<name>.partial-*``) is removed on errors, or by
    :func:`remove_partial_files` after a crash. The file gets the umask's permissions.

    Raises:
        CheckpointError: the file could not be written (e.g. no space left on the device).
    """
    state = {"format_version": FORMAT_VERSION, **state}
    target = Path(path)
    return _write_checkpoint(target, lambda handle: _torch_save(state, handle, target.parent))


def _torch_save(state: dict[str, Any], handle: BinaryIO, folder: Path) -> None:
    try:
        torch.save(state, handle)
    except RuntimeError as error:
        # torch's zip writer turns a failed write (a full disk) into "unexpected pos ...".
        free = _free_bytes(folder)
        reason = "no space left on device" if free is not None and free < 1 << 20 else None
        raise OSError(
            errno.ENOSPC if reason else errno.EIO, reason or f"torch.save failed: {_first(error)}"
        ) from error


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _first(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def copy_checkpoint(source: str | Path, path: str | Path) -> Path:
    """Copy the checkpoint file ``source`` to ``path``, atomically as :func:`save_checkpoint`."""
    with open(source, "rb") as original:
        return _write_checkpoint(Path(path), lambda handle: shutil.copyfileobj(original, handle))


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``.<name>.partial-*``) that a process killed while writing
    left in ``folder``; returns them. Call only while no other process writes there (a run
    folder's lock, see :mod:`byol.train.run_dir`)."""
    return remove_stale_temporaries(folder, everything=True)


def _write_checkpoint(target: Path, write: Callable[[BinaryIO], object]) -> Path:
    try:
        return write_atomically(target, write)
    except WriteError as error:
        message = str(error).replace("could not write ", "could not write checkpoint ", 1)
        raise CheckpointError(message) from error


def verify_integrity(file: Path) -> None:
    """Check every member of the checkpoint's zip archive against its stored CRC-32.

    Raises:
        CheckpointError: a member fails its CRC or the archive structure is damaged.
    """
    if not zipfile.is_zipfile(file):
        return  # not a torch zip checkpoint at all: torch.load names what it is
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        reason = f"its zip structure is damaged ({_first(error)})"
        raise CheckpointError(_corrupted(file, reason)) from error
    if bad is not None:
        raise CheckpointError(_corrupted(file, f"member {bad} fails its CRC-32 check"))


def _corrupted(file: Path, what: str) -> str:
    return (
        f"checkpoint {file} is corrupted: {what}; restore it from a copy or use an earlier "
        f"checkpoint (e.g. {file.parent / 'epoch-NNNN.pt'})"
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a BYOL checkpoint dict on the CPU, refusing anything unsafe or unknown.

    ``path`` is a checkpoint file or a run folder (its ``checkpoints/last.pt`` is read).

    Raises:
        ValueError: the file is missing, is not a BYOL checkpoint, holds objects that
            ``weights_only=True`` refuses (for example a pickle that would run code), or has a
            ``format_version`` newer than :data:`FORMAT_VERSION`.
    """
    file = checkpoint_file(path)
    verify_integrity(file)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower():
            raise ValueError(_refused_message(file, str(error))) from error
        raise ValueError(_not_a_checkpoint(file, _unreadable(error))) from error
    except Exception as error:
        # torch.load raises KeyError, EOFError, RuntimeError ... on bytes that are no checkpoint.
        reason = _unreadable(error)
        raise ValueError(_not_a_checkpoint(file, reason)) from error
    if not isinstance(checkpoint, dict):
        raise ValueError(_not_a_checkpoint(file, f"it holds a {type(checkpoint).__name__}"))
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(_not_a_checkpoint(file, f"no {', '.join(missing)} key"))
    version = checkpoint["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(_not_a_checkpoint(file, f"format_version={version!r}"))
    if version > FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {file} has format_version={version}, newer than the "
            f"{FORMAT_VERSION} this byol reads; upgrade byol to read it"
        )
    if not isinstance(checkpoint["config"], dict):
        raise ValueError(_not_a_checkpoint(file, "its config is not a dict"))
    model = checkpoint["model"]
    if not isinstance(model, dict) or not all(isinstance(v, Tensor) for v in model.values()):
        raise ValueError(_not_a_checkpoint(file, "its model entry is not a state dict"))
    return checkpoint


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file ``path`` names: itself, or a run folder's ``checkpoints/last.pt``."""
    file = Path(path)
    if file.is_dir():
        if not (file / RUN_CHECKPOINT).is_file():
            raise ValueError(
                f"{file} is a folder without {RUN_CHECKPOINT}; "
                "pass a run folder or a checkpoint file"
            )
        file = file / RUN_CHECKPOINT
    if not file.is_file():
        raise ValueError(f"checkpoint {file} does not exist; pass the path of a .pt checkpoint")
    return file


def _refused_message(file: Path, torch_message: str) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", torch_message)
    opcode = re.search(r"Unsupported operand (\d+)", torch_message)
    what = ""
    if found:
        what = f" (it references {found.group(1)})"
    elif opcode:
        what = f" (pickle opcode {opcode.group(1)})"
    return (
        f"checkpoint {file} was refused for safety: torch.load(weights_only=True) found objects "
        f"other than tensors and plain values{what}; re-save it holding only those"
    )


def _unreadable(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    detail = lines[0][:200] if lines else "no detail"
    return f"torch.load failed with {type(error).__name__}: {detail}"


def _not_a_checkpoint(file: Path, reason: str) -> str:
    return (
        f"{file} is not a BYOL checkpoint: {reason}; pass a file saved by byol training "
        f"(a dict with {', '.join(REQUIRED_KEYS)})"
    )
