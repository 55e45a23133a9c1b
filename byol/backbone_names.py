"""Names of the built-in backbones and what ``model.cifar_stem`` does to each, without
importing torch: the command line lists and checks them before anything heavy is loaded."""

from __future__ import annotations

from typing import Literal

# torchvision.models builders of these names (byol.backbones builds them).
TORCHVISION_RESNET_NAMES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
# Widths of byol.small_resnet.SmallResNet, built in as small_resnet18_w{width}.
SMALL_RESNET_WIDTHS = (8, 16, 32)
SMALL_RESNET_NAMES = tuple(f"small_resnet18_w{width}" for width in SMALL_RESNET_WIDTHS)
TIMM_PREFIX = "timm/"

StemEffect = Literal["replaces", "built_in", "refused"]


def cifar_stem_effect(backbone: str) -> StemEffect:
    """What ``model.cifar_stem=true`` does to ``backbone``.

    ``replaces``: a torchvision ResNet gets a 3x3 stride-1 stem without max-pool instead of its
    7x7 stride-2 stem and max-pool. ``built_in``: the small ResNets always have that stem, so
    the flag changes nothing. ``refused``: any other (timm) model has no such option and
    :func:`byol.backbones.build_backbone` raises.
    """
    if backbone in TORCHVISION_RESNET_NAMES:
        return "replaces"
    if backbone in SMALL_RESNET_NAMES:
        return "built_in"
    return "refused"


def backbone_names_help() -> str:
    """The built-in names in one line, for ``--help``."""
    return (
        f"{', '.join(TORCHVISION_RESNET_NAMES)} (torchvision); {', '.join(SMALL_RESNET_NAMES)} "
        f"(narrow ResNet-18s for small images); {TIMM_PREFIX}<name> or any timm model name "
        "(pip install byol[timm])"
    )
