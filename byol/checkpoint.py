"""Checkpoint files: written atomically, read without running code.

A checkpoint is a dict of tensors and plain values saved with ``torch.save``:
``format_version``, ``config`` (the resolved config as nested dicts), ``model`` (state dict of
the whole :class:`~byol.model.BYOL`), and for resumption ``optimizer``, ``step``, ``epoch``,
``batch_in_epoch``, ``rng`` (generator states as uint8 tensors). It is read with
``torch.load(weights_only=True)``, which refuses pickles that would construct arbitrary
objects, so a checkpoint from elsewhere cannot run code when loaded.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason and what to do."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then rename.

    A crash (or a full disk) during the write leaves the previous file at ``path`` intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {"format_version": FORMAT_VERSION, **state}
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CheckpointError(f"could not write checkpoint {target}: {error.strerror or error}") from error
        raise
    return target


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True`` and check its format version."""
    source = Path(path)
    if source.is_dir():
        source = source / "checkpoints" / "last.pt"
    if not source.is_file():
        raise CheckpointError(f"checkpoint {source} does not exist")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {source}: it holds objects other than tensors and plain values, "
            "which could run code when unpickled (only byol checkpoints are accepted)"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{source} is not a readable checkpoint ({error.__class__.__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'truncated'})") from error
    if not isinstance(state, dict) or "model" not in state or "format_version" not in state:
        raise CheckpointError(f"{source} is not a byol checkpoint (no model/format_version)")
    version = state["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{source} has checkpoint format {version}, newer than this byol supports "
            f"({FORMAT_VERSION}); upgrade byol to read it"
        )
    return state
