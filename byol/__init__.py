"""byol: Bootstrap Your Own Latent (Grill et al., NeurIPS 2020), faithful to the paper.

Public API::

    from byol import BYOL
    model = BYOL(backbone)
    out = model(view1, view2)
    out.loss.backward(); optimizer.step()
    model.update_target(tau)
"""

from byol.backbones import Backbone, build_backbone, wrap_backbone
from byol.config import Config
from byol.ema import ema_update_
from byol.loss import byol_loss, regression_loss
from byol.model import BYOL, BYOLOutput, build_model
from byol.optim import LARS, build_optimizer
from byol.schedules import learning_rate, target_tau

__version__ = "0.1.0"

__all__ = [
    "BYOL",
    "LARS",
    "BYOLOutput",
    "Backbone",
    "Config",
    "build_backbone",
    "build_model",
    "build_optimizer",
    "byol_loss",
    "ema_update_",
    "learning_rate",
    "regression_loss",
    "target_tau",
    "wrap_backbone",
]
