"""The files of a fine-tuned classifier.

``classifier.safetensors``: every tensor of :class:`~byol.downstream.finetune.
FinetuneClassifier` (``encoder.*`` and ``head.weight``/``head.bias``); ``classifier.json``:
what is needed to rebuild and feed it (backbone, classes, image size, normalisation, resize
policy) and how it was trained; ``resnet.pth``, for torchvision ResNet backbones only: a plain
torchvision state dict with ``fc`` = the head, which loads into
``torchvision.models.<backbone>(num_classes=K)`` (after the stem change when
``model.cifar_stem`` was on, see the json's ``torchvision_note``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torchvision.models import ResNet

from byol.atomic import remove_stale_temporaries, write_together
from byol.backbones import build_backbone
from byol.downstream.finetune import FinetuneClassifier

FORMAT = "byol.downstream.FinetuneClassifier"
WEIGHTS_FILE = "classifier.safetensors"
METADATA_FILE = "classifier.json"
TORCHVISION_FILE = "resnet.pth"


def torchvision_state_dict(classifier: FinetuneClassifier) -> dict[str, torch.Tensor] | None:
    """The encoder's torchvision ResNet keys plus ``fc.weight``/``fc.bias`` from the head;
    None when the encoder is not a torchvision ResNet."""
    if not isinstance(classifier.encoder, ResNet):
        return None
    # The encoder's own fc is an Identity (byol.backbones.torchvision_resnet): no fc keys.
    state = {
        name: tensor.detach().cpu().clone()
        for name, tensor in classifier.encoder.state_dict().items()
    }
    state["fc.weight"] = classifier.head.weight.detach().cpu().clone()
    state["fc.bias"] = classifier.head.bias.detach().cpu().clone()
    return state


def save_finetuned(
    classifier: FinetuneClassifier, folder: str | Path, metadata: dict[str, Any]
) -> list[Path]:
    """Write the classifier's files into ``folder`` (created), all renamed into place together
    so a failed write leaves the previous set whole. Returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    tensors = {
        name: tensor.detach().cpu().contiguous() for name, tensor in classifier.state_dict().items()
    }
    header = {"format": FORMAT, "metadata": json.dumps(metadata, sort_keys=True)}
    files = {
        folder / WEIGHTS_FILE: save(tensors, metadata=header),
        folder / METADATA_FILE: (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode(),
    }
    torchvision_state = torchvision_state_dict(classifier)
    if torchvision_state is not None:
        buffer = io.BytesIO()
        torch.save(torchvision_state, buffer)
        files[folder / TORCHVISION_FILE] = buffer.getvalue()
    return write_together(files)


def load_finetuned(folder: str | Path) -> tuple[FinetuneClassifier, dict[str, Any]]:
    """Rebuild a classifier written by :func:`save_finetuned` (tensors only, no pickle)."""
    folder = Path(folder)
    metadata_file = folder / METADATA_FILE
    if not metadata_file.is_file():
        raise ValueError(
            f"{folder} holds no {METADATA_FILE}; pass the folder byol finetune wrote (--out)"
        )
    metadata = json.loads(metadata_file.read_text())
    backbone = build_backbone(metadata["backbone"], bool(metadata.get("cifar_stem", False)))
    classifier = FinetuneClassifier(
        backbone.module, backbone.feature_dim, int(metadata["num_classes"])
    )
    classifier.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    return classifier.eval(), metadata
