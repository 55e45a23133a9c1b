"""byol: Bootstrap Your Own Latent (Grill et al., NeurIPS 2020), faithful to the paper.

Public API::

    from byol import BYOL
    model = BYOL(backbone)
    out = model(view1, view2)
    out.loss.backward(); optimizer.step()
    model.update_target(tau)

    from byol import load_encoder
    encoder = load_encoder("runs/my-run")  # a trained run's frozen encoder, for downstream use

The names below are imported on first use (PEP 562), so ``import byol`` and the ``byol``
command's ``--help`` do not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "BYOL": "byol.model",
    "BYOLOutput": "byol.model",
    "build_model": "byol.model",
    "LARS": "byol.optim",
    "build_optimizer": "byol.optim",
    "Backbone": "byol.backbones",
    "build_backbone": "byol.backbones",
    "wrap_backbone": "byol.backbones",
    "Config": "byol.config",
    "LoadedEncoder": "byol.downstream.load",
    "load_encoder": "byol.downstream.load",
    "ema_update_": "byol.ema",
    "byol_loss": "byol.loss",
    "regression_loss": "byol.loss",
    "learning_rate": "byol.schedules",
    "target_tau": "byol.schedules",
}

if TYPE_CHECKING:
    from byol.backbones import Backbone, build_backbone, wrap_backbone
    from byol.config import Config
    from byol.downstream.load import LoadedEncoder, load_encoder
    from byol.ema import ema_update_
    from byol.loss import byol_loss, regression_loss
    from byol.model import BYOL, BYOLOutput, build_model
    from byol.optim import LARS, build_optimizer
    from byol.schedules import learning_rate, target_tau


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'byol' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "BYOL",
    "LARS",
    "BYOLOutput",
    "Backbone",
    "Config",
    "LoadedEncoder",
    "build_backbone",
    "build_model",
    "build_optimizer",
    "byol_loss",
    "ema_update_",
    "learning_rate",
    "load_encoder",
    "regression_loss",
    "target_tau",
    "wrap_backbone",
]
