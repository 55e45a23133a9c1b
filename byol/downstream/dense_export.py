"""Detection and segmentation models over a trained encoder, written as files (``byol downstream``).

:func:`build_dense_model` builds one of torchvision's detectors (Faster R-CNN, Mask R-CNN,
RetinaNet) or segmenters (DeepLabV3, FCN) with the trained ResNet as its backbone;
:func:`write_dense_model` writes its whole ``state_dict`` as safetensors, with a JSON file of
how it was built, so that a training script without ``byol`` starts from it::

    from safetensors.torch import load_file
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=3,
                                   norm_layer=FrozenBatchNorm2d)
    model = FasterRCNN(backbone, num_classes=91)
    model.load_state_dict(load_file("fasterrcnn.safetensors"))

The parameter names are torchvision's own (``backbone.body.layer1...``, ``backbone.fpn...``
for detectors; ``backbone.layer1...``, ``classifier...`` for segmenters), so the file loads into
the model torchvision's builders make for the same ResNet and head.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from byol.atomic import write_bytes
from byol.downstream.dense_spec import SEGMENTERS, DenseModelSpec, check_weights_path
from byol.downstream.detection import FPN_CHANNELS, detection_backbone
from byol.downstream.load import LoadedEncoder, load_encoder
from byol.downstream.resnet_parts import EncoderSource
from byol.downstream.segmentation import segmentation_model

# Side of the blank image the built model is run on once, to show it works before it is written.
_CHECK_SIDE = 64


def build_dense_model(source: EncoderSource, spec: DenseModelSpec) -> nn.Module:
    """The torchvision model of ``spec`` over the trained ResNet of ``source`` (a run folder,
    checkpoint or export folder, or a :class:`~byol.downstream.load.LoadedEncoder`).

    Detectors take a list of (3, H, W) images in [0, 1] (they normalise with the encoder's
    mean and std and resize internally); segmenters take normalised (B, 3, H, W) batches and
    return ``{"out": (B, num_classes, H, W)}``.
    """
    spec.check()
    loaded = source if isinstance(source, LoadedEncoder) else load_encoder(source)
    if spec.architecture in SEGMENTERS:
        return segmentation_model(
            loaded,
            spec.num_classes,
            kind="deeplabv3" if spec.architecture == "deeplabv3" else "fcn",
            aux=spec.aux,
            output_stride=spec.output_stride,
        )
    normalisation = {"image_mean": list(loaded.mean), "image_std": list(loaded.std)}
    if spec.architecture == "retinanet":
        # torchvision's retinanet_resnet50_fpn: stages 2-4 and P6/P7 from the pyramid's P5.
        backbone = detection_backbone(
            loaded,
            spec.trainable_layers,
            returned_layers=[2, 3, 4],
            extra_blocks=LastLevelP6P7(FPN_CHANNELS, FPN_CHANNELS),
        )
        return RetinaNet(backbone, spec.num_classes, **normalisation)
    backbone = detection_backbone(loaded, spec.trainable_layers)
    detector = FasterRCNN if spec.architecture == "fasterrcnn" else MaskRCNN
    return detector(backbone, spec.num_classes, **normalisation)


def check_dense_model(model: nn.Module, spec: DenseModelSpec) -> dict[str, list[int]]:
    """One forward pass in eval mode on a blank image; the shapes of what came out."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if spec.architecture in SEGMENTERS:
                output = model(torch.zeros(1, 3, _CHECK_SIDE, _CHECK_SIDE))
                return {name: list(value.shape) for name, value in output.items()}
            detections = model([torch.zeros(3, _CHECK_SIDE, _CHECK_SIDE)])[0]
            return {name: list(value.shape) for name, value in detections.items()}
    finally:
        model.train(was_training)


def write_dense_model(
    model: nn.Module, spec: DenseModelSpec, out: Path, loaded: LoadedEncoder
) -> tuple[Path, Path]:
    """``model.state_dict()`` as safetensors at ``out`` and, as JSON beside it (``out`` with
    ``.json``), ``spec`` and the encoder it was built from: backbone, origin, image size and
    normalisation, which a detector keeps as plain attributes, outside its ``state_dict``."""
    check_weights_path(str(out))
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    write_bytes(out, save(state))
    description = out.with_suffix(".json")
    document = {
        **asdict(spec),
        "backbone": loaded.backbone,
        "encoder": str(loaded.origin),
        "image_size": loaded.image_size,
        "image_mean": list(loaded.mean),
        "image_std": list(loaded.std),
        "weights": out.name,
        "tensors": len(state),
    }
    write_bytes(description, (json.dumps(document, indent=2) + "\n").encode())
    return out, description
