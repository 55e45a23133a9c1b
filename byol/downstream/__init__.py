"""Use a trained BYOL encoder downstream: load it, fine-tune it, build detectors and segmenters.

Example::

    import byol

    loaded = byol.load_encoder("runs/my-run")  # run folder, checkpoint or export folder
    features = loaded.features(images)  # (B, 3, H, W) in [0, 1] -> (B, loaded.feature_dim)

:func:`~byol.downstream.finetune.finetune` trains the encoder with a linear head on labelled
images (``byol finetune``); :func:`~byol.downstream.detection.detection_backbone` and
:func:`~byol.downstream.segmentation.segmentation_model` turn a torchvision ResNet encoder into
torchvision detection and segmentation models. The names are imported on first use (PEP 562),
so the command line reads :mod:`byol.downstream.finetune_config` without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LoadedEncoder": "byol.downstream.load",
    "load_encoder": "byol.downstream.load",
    "detection_backbone": "byol.downstream.detection",
    "segmentation_model": "byol.downstream.segmentation",
}

if TYPE_CHECKING:
    from byol.downstream.detection import detection_backbone
    from byol.downstream.load import LoadedEncoder, load_encoder
    from byol.downstream.segmentation import segmentation_model


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'byol.downstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


__all__ = ["LoadedEncoder", "detection_backbone", "load_encoder", "segmentation_model"]
