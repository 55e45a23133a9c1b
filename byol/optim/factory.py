"""Build the optimiser for the online network with the paper's exclusions.

Biases and the parameters of normalisation layers get no weight decay and no LARS adaptation
([official] ``utils/optimizers.py:30-35``, ``byol_experiment.py:191-195``).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.optim import SGD, AdamW, Optimizer

from byol.config import OptimConfig
from byol.optim.lars import LARS
from byol.schedules import peak_learning_rate

NORM_TYPES: tuple[type[nn.Module], ...] = (_NormBase, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split trainable parameters into (decayed and adapted) and (excluded) groups.

    Excluded: every parameter named ``bias`` and every parameter of a normalisation module.
    """
    regular, excluded = [], []
    for submodule in module.modules():
        for name, parameter in submodule.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            if name == "bias" or isinstance(submodule, NORM_TYPES):
                excluded.append(parameter)
            else:
                regular.append(parameter)
    return [
        {"params": regular, "weight_decay": weight_decay, "lars_adaptation": True},
        {"params": excluded, "weight_decay": 0.0, "lars_adaptation": False},
    ]


def build_optimizer(module: nn.Module, config: OptimConfig) -> Optimizer:
    """The optimiser named by ``config.optimizer`` over ``module``'s trainable parameters.

    The learning rate is set every step by the engine from :func:`byol.schedules.learning_rate`;
    it starts at the peak (:func:`byol.schedules.peak_learning_rate`), for use without a
    schedule.
    """
    peak = peak_learning_rate(config.base_learning_rate, config.batch_size)
    groups = parameter_groups(module, config.weight_decay)
    if config.optimizer == "lars":
        return LARS(
            groups,
            lr=peak,
            momentum=config.momentum,
            eta=config.lars_eta,
            trust_clip=config.lars_trust_clip,
        )
    for group in groups:
        group.pop("lars_adaptation")
    if config.optimizer == "sgd":
        return SGD(groups, lr=peak, momentum=config.momentum)
    if config.optimizer == "adamw":
        return AdamW(groups, lr=peak)
    raise ValueError(f"optimizer={config.optimizer!r} is not one of lars, sgd, adamw")
