"""A feature-pyramid backbone for torchvision's detectors from a trained BYOL ResNet.

Example::

    from torchvision.models.detection import FasterRCNN
    from byol.downstream import detection_backbone

    model = FasterRCNN(detection_backbone("runs/imagenet"), num_classes=91)

The result is torchvision's ``BackboneWithFPN`` (Lin et al. 2017, feature pyramid networks)
over the encoder's ``layer1`` ... ``layer4``, with ``out_channels = 256``, so it plugs into
``FasterRCNN``, ``MaskRCNN``, ``KeypointRCNN`` and ``RetinaNet`` (the latter with
``returned_layers=[2, 3, 4]`` and ``LastLevelP6P7`` extra blocks, as torchvision builds it).
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool

from byol.downstream.resnet_parts import (
    STAGES,
    EncoderSource,
    freeze_batchnorm,
    freeze_stages,
    resnet_copy,
    stage_channels,
)

FPN_CHANNELS = 256


def detection_backbone(
    source: EncoderSource,
    trainable_layers: int = 3,
    returned_layers: Sequence[int] | None = None,
    extra_blocks: ExtraFPNBlock | None = None,
    frozen_batchnorm: bool = True,
) -> BackboneWithFPN:
    """``BackboneWithFPN`` over a copy of the trained torchvision ResNet of ``source``.

    Args:
        source: a run folder, checkpoint or export folder (see
            :func:`~byol.downstream.load.load_encoder`), or a ``LoadedEncoder``.
        trainable_layers: how many of ``layer4, layer3, layer2, layer1, conv1`` (from the top)
            are fine-tuned, 0-5; the rest is frozen (torchvision's default is 3).
        returned_layers: stages (1-4) that feed the pyramid; default ``[1, 2, 3, 4]``.
        extra_blocks: pyramid levels beyond the last stage; default ``LastLevelMaxPool()``.
        frozen_batchnorm: replace BatchNorm by ``FrozenBatchNorm2d`` with the trained
            statistics, as torchvision's detection backbones do.

    Returns:
        A module mapping images (B, 3, H, W) to an ordered dict of (B, 256, H/s, W/s) maps
        ``"0", "1", ...`` (one per returned stage, then ``"pool"``), with ``out_channels = 256``.

    Raises:
        ValueError: the encoder is not a torchvision ResNet, or an argument is out of range.
    """
    resnet, _ = resnet_copy(source, "detection_backbone")
    stages = [1, 2, 3, 4] if returned_layers is None else list(returned_layers)
    if not stages or any(isinstance(s, bool) or s not in (1, 2, 3, 4) for s in stages):
        raise ValueError(
            f"returned_layers={returned_layers!r} must list stages from 1 to 4, e.g. [1, 2, 3, 4]"
        )
    if frozen_batchnorm:
        freeze_batchnorm(resnet)
    freeze_stages(resnet, trainable_layers)
    names = [STAGES[stage - 1] for stage in stages]
    return BackboneWithFPN(
        resnet,
        return_layers={name: str(index) for index, name in enumerate(names)},
        in_channels_list=[stage_channels(resnet, name) for name in names],
        out_channels=FPN_CHANNELS,
        extra_blocks=extra_blocks if extra_blocks is not None else LastLevelMaxPool(),
    )
