"""Semantic segmentation models of torchvision over a trained BYOL ResNet.

Example::

    from byol.downstream import segmentation_model

    model = segmentation_model("runs/imagenet", num_classes=21)  # DeepLabV3, output stride 8
    logits = model(images)["out"]  # (B, 21, H, W)

The encoder's ``layer4`` feeds the head (``"out"``) and, with ``aux=True``, ``layer3`` feeds
an auxiliary FCN head (``"aux"``), as torchvision's ``deeplabv3_resnet50`` and
``fcn_resnet50`` are laid out; ``layer3``/``layer4`` trade stride for dilation so the maps are
1/8 of the input (DeepLabV3, Chen et al. 2017).
"""

from __future__ import annotations

from typing import Literal

from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCN, FCNHead

from byol.downstream.resnet_parts import EncoderSource, dilate_, resnet_copy, stage_channels

SegmentationKind = Literal["deeplabv3", "fcn"]
_KINDS = ("deeplabv3", "fcn")


def segmentation_model(
    source: EncoderSource,
    num_classes: int,
    kind: SegmentationKind = "deeplabv3",
    aux: bool = False,
    output_stride: int = 8,
) -> nn.Module:
    """torchvision ``DeepLabV3`` or ``FCN`` whose backbone is a copy of the trained ResNet.

    Args:
        source: a run folder, checkpoint or export folder (see
            :func:`~byol.downstream.load.load_encoder`), or a ``LoadedEncoder``.
        num_classes: classes per pixel (background included), >= 1.
        kind: ``"deeplabv3"`` (ASPP head) or ``"fcn"`` (one 3x3 convolution head).
        aux: also return ``"aux"`` logits from ``layer3`` through an FCN head.
        output_stride: 8 (torchvision's choice), 16 or 32 (the encoder as trained).

    Returns:
        A module mapping images (B, 3, H, W) to ``{"out": (B, num_classes, H, W)}`` (and
        ``"aux"`` of the same shape), logits upsampled bilinearly to the input size.

    Raises:
        ValueError: the encoder is not a torchvision ResNet, or an argument is out of range.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} must be one of {', '.join(_KINDS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive integer, e.g. 21")
    resnet, _ = resnet_copy(source, "segmentation_model")
    dilate_(resnet, output_stride)
    return_layers = {"layer4": "out", **({"layer3": "aux"} if aux else {})}
    backbone = IntermediateLayerGetter(resnet, return_layers=return_layers)
    channels = stage_channels(resnet, "layer4")
    aux_head = FCNHead(stage_channels(resnet, "layer3"), num_classes) if aux else None
    if kind == "deeplabv3":
        return DeepLabV3(backbone, DeepLabHead(channels, num_classes), aux_head)
    return FCN(backbone, FCNHead(channels, num_classes), aux_head)
