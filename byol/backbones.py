"""Backbone factory: torchvision ResNets (with a CIFAR variant), timm models, user modules.

A backbone maps images (B, 3, H, W) to pooled features (B, D). Its feature dimension D is read
from what the model declares (``fc.in_features`` for torchvision ResNets, ``num_features`` for
timm), never found by a dummy forward pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torchvision import models

from byol.backbone_names import TIMM_PREFIX, TORCHVISION_RESNET_NAMES
from byol.small_resnet import SMALL_RESNETS, SmallResNet

TORCHVISION_RESNETS: dict[str, Callable[..., models.ResNet]] = {
    name: getattr(models, name) for name in TORCHVISION_RESNET_NAMES
}


@dataclass(frozen=True)
class Backbone:
    """A feature extractor and the size of its pooled output.

    ``module``: (B, 3, H, W) -> (B, feature_dim). ``source``: "torchvision", "timm", "byol" or "custom",
    which decides the export formats available.
    """

    module: nn.Module
    feature_dim: int
    name: str
    source: str


def torchvision_resnet(
    name: str, cifar_stem: bool = False, zero_init_residual: bool = False
) -> models.ResNet:
    """A torchvision ResNet without its classifier (``fc = Identity``).

    ``cifar_stem`` swaps the 7x7/2 convolution and max-pool for a 3x3/1 convolution, the usual
    adaptation for 32 px images (SimCLR, Chen et al. 2020, Appendix B.9). The state dict keys
    stay torchvision's, so exported weights load into ``torchvision.models.<name>()`` with the
    same two changes.
    """
    if name not in TORCHVISION_RESNETS:
        raise ValueError(_unknown_name_message(name, list(TORCHVISION_RESNETS)))
    model = TORCHVISION_RESNETS[name](weights=None, zero_init_residual=zero_init_residual)
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


def timm_model(name: str) -> nn.Module:
    """A timm model with its classifier removed (``num_classes=0``: pooled features out)."""
    try:
        import timm
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ValueError(
            f"backbone {name!r} needs timm: install it with `pip install byol[timm]`"
        ) from error
    if name not in timm.list_models():
        raise ValueError(_unknown_name_message(name, timm.list_models()))
    return timm.create_model(name, pretrained=False, num_classes=0)


def build_backbone(
    name: str, cifar_stem: bool = False, zero_init_residual: bool = False
) -> Backbone:
    """Build a backbone by name.

    ``resnet18`` ... ``wide_resnet101_2`` come from torchvision, ``small_resnet18_w{8,16,32}``
    from :mod:`byol.small_resnet`; any other name (or one written ``timm/<name>``) is looked up
    in timm. ``cifar_stem`` (see :func:`byol.backbone_names.cifar_stem_effect`) replaces a
    torchvision ResNet's stem, changes nothing for the small ResNets (their stem is always the
    CIFAR one) and is refused for timm models.
    """
    if name in TORCHVISION_RESNETS:
        module = torchvision_resnet(name, cifar_stem, zero_init_residual)
        return Backbone(module, declared_feature_dim(module, name), name, "torchvision")
    if name in SMALL_RESNETS:
        small = SmallResNet(SMALL_RESNETS[name])
        return Backbone(small, small.num_features, name, "byol")
    timm_name = name.removeprefix(TIMM_PREFIX)
    timm_names = _timm_model_names()
    if timm_name not in timm_names:
        # timm also has resnet18 etc.: name each candidate once.
        candidates = list(dict.fromkeys([*TORCHVISION_RESNETS, *SMALL_RESNETS, *timm_names]))
        raise ValueError(_unknown_name_message(name, candidates))
    if cifar_stem:
        raise ValueError(
            f"cifar_stem=True applies to torchvision ResNets only, not to timm model {timm_name!r};"
            " set model.cifar_stem to false"
        )
    module = timm_model(timm_name)
    return Backbone(module, declared_feature_dim(module, name), timm_name, "timm")


def _timm_model_names() -> list[str]:
    try:
        import timm
    except ImportError:
        return []
    return list(timm.list_models())


def wrap_backbone(module: nn.Module, feature_dim: int | None = None) -> Backbone:
    """Use a user's module; the feature size comes from ``feature_dim`` or what it declares."""
    dim = feature_dim if feature_dim is not None else declared_feature_dim(module)
    return Backbone(module, dim, type(module).__name__, "custom")


def declared_feature_dim(module: nn.Module, name: str | None = None) -> int:
    """The size D of the pooled features (B, D) that ``module`` returns, as it declares it:
    ``num_features`` (timm, the small ResNets), ``feature_dim``, ``embed_dim``,
    ``out_features``, or a torchvision ResNet's last BatchNorm. ``name`` is for the error."""
    fc = getattr(module, "fc", None)
    if isinstance(fc, nn.Linear):
        raise ValueError(
            f"backbone {name or type(module).__name__} still has its classifier `fc`; "
            "replace it with nn.Identity() so the module returns pooled features"
        )
    for attribute in ("num_features", "feature_dim", "embed_dim", "out_features"):
        value = getattr(module, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    if isinstance(module, models.ResNet):
        layer4 = module.layer4[-1]
        last_bn = getattr(layer4, "bn3", None) or layer4.bn2
        return int(last_bn.num_features)
    raise ValueError(
        f"cannot tell the feature size of {type(module).__name__}: pass feature_dim=... "
        "(the size of the pooled features the module returns)"
    )


def _unknown_name_message(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown backbone {name!r}{hint} Built in: {', '.join(TORCHVISION_RESNETS)}, "
        f"{', '.join(SMALL_RESNETS)}; any timm model name also works when timm is installed"
    )
