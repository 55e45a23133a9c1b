"""``byol downstream``: a torchvision detector or segmenter over the trained encoder, written
as one safetensors file (parsing only; no torch here, so ``--help`` answers at once)."""

from __future__ import annotations

import argparse
from typing import Any

from byol.downstream.dense_spec import (
    ARCHITECTURES,
    DETECTORS,
    DenseModelSpec,
    check_weights_path,
)

DESCRIPTION = (
    "Build a torchvision detection or segmentation model whose backbone is the trained "
    "torchvision ResNet of --checkpoint, run it once on a blank image, and write its whole "
    "state_dict to --out (safetensors, with torchvision's parameter names) and how it was built "
    "to the .json beside it. Detectors: "
    + ", ".join(DETECTORS)
    + " (a feature pyramid over layer1-layer4, layer2-layer4 for retinanet, BatchNorm frozen "
    "with the trained statistics, as "
    "torchvision's detection backbones are); segmenters: deeplabv3, fcn (layer3/layer4 dilated "
    "to the output stride). The heads are freshly initialised: train the model on your boxes "
    "or masks. In Python, byol.downstream.detection_backbone and segmentation_model give the "
    "same models without a file."
)


def add_downstream_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    defaults = DenseModelSpec("fasterrcnn", 91)
    parser = sub.add_parser(
        "downstream",
        help="build a torchvision detector or segmenter over the encoder and write its weights",
        description=DESCRIPTION,
        formatter_class=formatter,
    )
    parser.add_argument("architecture", choices=ARCHITECTURES, help="the model to build")
    parser.add_argument(
        "--checkpoint", required=True, help="run folder, checkpoint file or `byol export` folder"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        required=True,
        help="classes, background included (91 for COCO detection, 21 for VOC segmentation)",
    )
    parser.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    parser.add_argument(
        "--trainable-layers",
        type=int,
        default=defaults.trainable_layers,
        help="detectors: how many of layer4, layer3, layer2, layer1, conv1 (from the top) stay "
        "trainable; the rest is frozen (torchvision's default)",
    )
    parser.add_argument(
        "--aux", action="store_true", help="segmenters: add the FCN auxiliary head on layer3"
    )
    parser.add_argument(
        "--output-stride",
        type=int,
        choices=(8, 16, 32),
        default=defaults.output_stride,
        help="segmenters: input side / feature-map side (8: torchvision's DeepLabV3)",
    )
    parser.set_defaults(handler="downstream")


def spec_from_arguments(arguments: argparse.Namespace) -> DenseModelSpec:
    spec = DenseModelSpec(
        architecture=arguments.architecture,
        num_classes=arguments.num_classes,
        trainable_layers=arguments.trainable_layers,
        aux=arguments.aux,
        output_stride=arguments.output_stride,
    )
    spec.check()
    check_weights_path(arguments.out)
    return spec
