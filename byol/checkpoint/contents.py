"""What a checkpoint holds: the run's config, the BYOL module, and a check that weights fit.

A checkpoint is one ``torch.save`` of a dict::

    format_version: int           # FORMAT_VERSION
    config: dict                  # byol.config_io.to_dict(resolved Config)
    model: dict[str, Tensor]      # BYOL.state_dict(): online.encoder.*, online.projector.*,
                                  # online.predictor.*, target.encoder.*, target.projector.*
    ...                           # training state (optimizer, step, epoch, ...), ignored here

It is always read with ``torch.load(..., weights_only=True)``, so a file holding anything but
tensors and plain Python values is refused instead of executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from byol.checkpoint.files import checkpoint_file, read_checkpoint
from byol.config import Config
from byol.config_io import apply_mapping
from byol.model import BYOL, build_model

# Prefixes that wrappers add to every key of a state dict, and how to avoid them.
_WRAPPER_PREFIXES = {
    "_orig_mod.": "torch.compile",
    "module.": "DistributedDataParallel",
}


def config_from_checkpoint(checkpoint: Mapping[str, Any], origin: str = "checkpoint") -> Config:
    """The run's :class:`~byol.config.Config`: library defaults overridden by the saved dict."""
    try:
        return apply_mapping(Config(), checkpoint["config"])
    except ValueError as error:
        raise ValueError(
            f"{origin}: its saved config does not fit this byol ({error}); "
            "export it with the byol version that trained it"
        ) from error


def model_from_checkpoint(
    checkpoint: Mapping[str, Any], origin: str = "checkpoint"
) -> tuple[BYOL, Config]:
    """Rebuild the whole :class:`~byol.model.BYOL` module and load its weights (strict)."""
    config = config_from_checkpoint(checkpoint, origin)
    model = build_model(config.model)
    state: Mapping[str, Tensor] = checkpoint["model"]
    check_weights_fit(state, model.state_dict(), config.model.backbone, origin)
    model.load_state_dict(state, strict=True)
    return model.eval(), config


def load_encoder_from_checkpoint(path: str | Path) -> tuple[nn.Module, Config]:
    """The trained online encoder (eval mode) and the run's config.

    The encoder maps normalised images (B, 3, S, S) to pooled features (B, D), where
    ``D = build_backbone(config.model.backbone).feature_dim``; the target network and both
    heads are dropped ([paper] Section 3.1: "we only keep the encoder f_theta").
    """
    file = checkpoint_file(path)
    model, config = model_from_checkpoint(read_checkpoint(file), f"checkpoint {file}")
    return model.online.encoder.eval(), config


def check_weights_fit(
    saved: Mapping[str, Tensor], expected: Mapping[str, Tensor], backbone: str, origin: str
) -> None:
    """Name what does not fit before ``load_state_dict`` prints a page of keys."""
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    reshaped = [key for key in expected if key in saved and saved[key].shape != expected[key].shape]
    if not (missing or unexpected or reshaped):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys such as {missing[0]!r}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys such as {unexpected[0]!r}")
    if reshaped:
        key = reshaped[0]
        problems.append(
            f"{len(reshaped)} shapes differ such as {key!r} "
            f"{tuple(saved[key].shape)} vs {tuple(expected[key].shape)}"
        )
    for prefix, wrapper in _WRAPPER_PREFIXES.items():
        if saved and all(key.startswith(prefix) for key in saved):
            raise ValueError(
                f"{origin}: every weight name starts with {prefix!r} ({wrapper} wrapper); "
                "save the state dict of the unwrapped BYOL module"
            )
    raise ValueError(
        f"{origin}: its weights do not fit model.backbone={backbone!r} and the heads in its "
        f"config ({'; '.join(problems)}); save the checkpoint with the config it was trained with"
    )
