"""Training checkpoints: the one place that knows their files and their contents.

:mod:`byol.checkpoint.files` writes them atomically and reads them without running code
(``torch.load(weights_only=True)`` after a CRC check); :mod:`byol.checkpoint.contents` rebuilds
the run's config and the BYOL module from what was read and names weights that do not fit.
Training, evaluation and export all go through here.
"""

from byol.checkpoint.contents import (
    check_weights_fit,
    config_from_checkpoint,
    load_encoder_from_checkpoint,
    model_from_checkpoint,
)
from byol.checkpoint.files import (
    FORMAT_VERSION,
    PARTIAL_MARK,
    REQUIRED_KEYS,
    RUN_CHECKPOINT,
    CheckpointError,
    checkpoint_file,
    copy_checkpoint,
    read_checkpoint,
    remove_partial_files,
    save_checkpoint,
    verify_integrity,
)

__all__ = [
    "FORMAT_VERSION",
    "PARTIAL_MARK",
    "REQUIRED_KEYS",
    "RUN_CHECKPOINT",
    "CheckpointError",
    "check_weights_fit",
    "checkpoint_file",
    "config_from_checkpoint",
    "copy_checkpoint",
    "load_encoder_from_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint",
    "remove_partial_files",
    "save_checkpoint",
    "verify_integrity",
]
