"""The trained torchvision ResNet behind a run, prepared for dense prediction heads.

Detection and segmentation models read the ResNet's stages (``layer1`` ... ``layer4``), so
they need the torchvision ResNet itself; the helpers here fetch a private copy of it (the
loaded encoder stays untouched), name its stage widths from the modules, freeze BatchNorm and
stages, and trade stride for dilation.
"""

from __future__ import annotations

import copy
from pathlib import Path

from torch import nn
from torchvision.models import ResNet
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

from byol.backbone_names import TORCHVISION_RESNET_NAMES
from byol.downstream.load import LoadedEncoder, load_encoder

STAGES = ("layer1", "layer2", "layer3", "layer4")
# Trained from the top down, as torchvision's detection backbones count trainable layers.
_TRAINABLE_ORDER = ("layer4", "layer3", "layer2", "layer1", "conv1")

EncoderSource = str | Path | LoadedEncoder


def resnet_copy(source: EncoderSource, purpose: str) -> tuple[ResNet, LoadedEncoder]:
    """A deep copy of the torchvision ResNet encoder of ``source`` (a path for
    :func:`~byol.downstream.load.load_encoder`, or what it returned), and the loaded encoder.

    Raises:
        ValueError: the backbone is not a torchvision ResNet (timm models and byol's small
            ResNets have other layouts).
    """
    loaded = source if isinstance(source, LoadedEncoder) else load_encoder(source)
    if loaded.source != "torchvision" or not isinstance(loaded.encoder, ResNet):
        raise ValueError(
            f"{purpose} is built from torchvision ResNets ({', '.join(TORCHVISION_RESNET_NAMES)})"
            f"; the encoder of {loaded.origin} is {loaded.backbone!r} ({loaded.source}), so "
            "train with one of those backbones or use its pooled features instead"
        )
    return copy.deepcopy(loaded.encoder), loaded


def stage_channels(resnet: ResNet, stage: str) -> int:
    """Channels that ``resnet.<stage>`` outputs, read from its last block's last convolution."""
    block = getattr(resnet, stage)[-1]
    last_conv = block.conv3 if isinstance(block, Bottleneck) else block.conv2
    return int(last_conv.out_channels)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` below ``module`` by a ``FrozenBatchNorm2d`` holding the same
    affine weights and running statistics (the usual choice for detection, whose batches of a
    few images would give noisy batch statistics). Returns ``module``, changed in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            if child.affine:
                frozen.weight.copy_(child.weight.detach())
                frozen.bias.copy_(child.bias.detach())
            if child.running_mean is not None and child.running_var is not None:
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def freeze_stages(resnet: ResNet, trainable_layers: int) -> None:
    """Leave the top ``trainable_layers`` (0-5) of ``layer4, layer3, layer2, layer1, conv1``
    trainable; every other parameter gets ``requires_grad = False``."""
    if isinstance(trainable_layers, bool) or trainable_layers not in range(6):
        raise ValueError(
            f"trainable_layers={trainable_layers!r} must be an integer from 0 (all frozen) to 5 "
            "(all trainable); 3 trains layer2-layer4"
        )
    trained = list(_TRAINABLE_ORDER[:trainable_layers])
    if trainable_layers == 5:
        trained.append("bn1")
    for name, parameter in resnet.named_parameters():
        parameter.requires_grad_(any(name.startswith(prefix + ".") for prefix in trained))


def dilate_(resnet: ResNet, output_stride: int) -> ResNet:
    """Set the output stride of ``resnet`` to 32, 16 or 8 by trading the stride of ``layer4``
    (16) or ``layer3`` and ``layer4`` (8) for dilation, in place; weights are unchanged.

    This is what torchvision's ``replace_stride_with_dilation`` does when it builds a ResNet
    (DeepLab, Chen et al. 2017, Section 3.1): a dilated stage's first block keeps the previous
    dilation without stride, its later blocks use the new dilation; 3x3 padding = dilation.
    """
    stages = {32: (), 16: ("layer4",), 8: ("layer3", "layer4")}
    if output_stride not in stages:
        raise ValueError(f"output_stride={output_stride!r} must be 8, 16 or 32")
    dilation = 1
    for stage in stages[output_stride]:
        previous, dilation = dilation, dilation * 2
        for index, block in enumerate(getattr(resnet, stage)):
            rate = previous if index == 0 else dilation
            for conv in _three_by_three(block):
                conv.stride, conv.dilation, conv.padding = (1, 1), (rate, rate), (rate, rate)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)
    return resnet


def _three_by_three(block: nn.Module) -> list[nn.Conv2d]:
    if isinstance(block, Bottleneck):
        return [block.conv2]
    if isinstance(block, BasicBlock):
        return [block.conv1, block.conv2]
    raise ValueError(f"unknown ResNet block {type(block).__name__}; expected torchvision's")
