"""``byol finetune``: load the encoder, prepare the labelled splits, fine-tune, score, save."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from byol.atomic import WriteError, write_text
from byol.backbone_names import cifar_stem_effect
from byol.backbones import wrap_backbone
from byol.checkpoint import checkpoint_file, load_encoder_from_checkpoint
from byol.cli.commands import splits_from_flags
from byol.cli.finetune import finetune_config
from byol.config import Config
from byol.downstream.classifier_io import save_finetuned
from byol.downstream.finetune import FinetuneClassifier, evaluate, finetune
from byol.downstream.finetune_config import FinetuneConfig
from byol.downstream.splits import LabelledSplits, write_labels_used
from byol.model import build_model

RESULTS_FILE = "results.json"
LABELS_USED_FILE = "labels_used.txt"


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def starting_encoder(checkpoint: Path, settings: FinetuneConfig) -> tuple[nn.Module, Config]:
    """The checkpoint's encoder and the run's config; with ``from_scratch`` a freshly
    initialised encoder of the same architecture instead (seeded by ``settings.seed``)."""
    encoder, config = load_encoder_from_checkpoint(checkpoint)
    if settings.from_scratch:
        torch.manual_seed(settings.seed)
        encoder = build_model(config.model).online.encoder
    return encoder, config


def default_out(checkpoint: Path, from_scratch: bool) -> Path:
    """``finetune/`` (or ``finetune-from-scratch/``) in the run folder of ``checkpoint``."""
    folder = (
        checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    )
    return folder / ("finetune-from-scratch" if from_scratch else "finetune")


def run_finetune(arguments: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = finetune_config(arguments)
    checkpoint = checkpoint_file(arguments.checkpoint)
    encoder, config = starting_encoder(checkpoint, settings)
    source = arguments.data or config.data.val_source or config.data.source
    # The labelled split is the data's whole train split (the pre-training's data.max_images
    # does not apply); --label-fraction / --labels-per-class reduce it.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, max_images=None))
    splits = splits_from_flags(config, source, arguments)
    config = splits.config
    device = _device()
    torch.manual_seed(settings.seed)  # the head's initialisation
    classifier = FinetuneClassifier(
        encoder, wrap_backbone(encoder).feature_dim, len(splits.train.classes)
    ).to(device)
    outcome = finetune(
        classifier,
        splits.train.images,
        splits.train.labels,
        settings,
        config.augment,
        device,
        progress=not arguments.no_progress,
    )
    top1, top5 = evaluate(
        outcome.classifier,
        splits.test.images,
        splits.test.labels,
        config.augment,
        settings.batch_size,
        device,
        settings.precision,
    )
    out = Path(arguments.out) if arguments.out else default_out(checkpoint, settings.from_scratch)
    record = result_record(source, checkpoint, config, settings, splits, top1, top5)
    record.update(steps=outcome.steps, batch_size=outcome.batch_size)
    record["final_train_loss"] = outcome.epoch_losses[-1]
    record["seconds"] = round(time.perf_counter() - started, 1)
    try:
        record["files"] = write_outputs(out, outcome.classifier, record, splits, source, config)
    except WriteError as error:
        print(json.dumps({**record, "files": None}), flush=True)
        raise ValueError(
            f"{error}; the accuracy above is complete, only the files were not saved "
            "(pass --out FOLDER to save them elsewhere)"
        ) from error
    print(json.dumps(record))
    return 0


def result_record(
    source: str,
    checkpoint: Path,
    config: Config,
    settings: FinetuneConfig,
    splits: LabelledSplits,
    top1: float,
    top5: float,
) -> dict[str, Any]:
    """The JSON result: accuracy, what was trained from what, on which images, and how."""
    size = config.augment.image_size
    recipe = dataclasses.asdict(settings)
    recipe["weight_decay"] = settings.resolved_weight_decay(size)
    return {
        "data": source,
        "protocol": "finetune",
        "initialisation": "from-scratch" if settings.from_scratch else "pre-trained",
        "from_scratch": settings.from_scratch,
        "checkpoint": str(checkpoint),
        "backbone": config.model.backbone,
        "top1": top1,
        "top5": top5,
        "num_classes": len(splits.train.classes),
        "train_images": len(splits.train),
        "train_images_available": splits.train_full_size,
        "test_images": len(splits.test),
        "label_subset": splits.subset,
        "image_size": size,
        "resize_policy": splits.policy.description,
        "train_augmentation": (
            f"random resized crop scale ({settings.crop_scale_min:g}, "
            f"{settings.crop_scale_max:g}) of the whole cached image to {size}x{size}, "
            f"horizontal flip p={settings.flip_prob:g}"
        ),
        "recipe": recipe,
    }


def write_outputs(
    out: Path,
    classifier: FinetuneClassifier,
    record: dict[str, Any],
    splits: LabelledSplits,
    source: str,
    config: Config,
) -> dict[str, str]:
    """Classifier files, ``labels_used.txt`` (with a label subset) and ``results.json``."""
    metadata = {
        key: record[key]
        for key in ("backbone", "data", "checkpoint", "from_scratch", "image_size", "top1", "top5")
    }
    metadata.update(
        cifar_stem=config.model.cifar_stem,
        num_classes=len(splits.train.classes),
        classes=list(splits.train.classes),
        mean=list(config.augment.mean),
        std=list(config.augment.std),
        resize_policy=splits.policy.description,
    )
    if config.model.cifar_stem and cifar_stem_effect(config.model.backbone) == "replaces":
        metadata["torchvision_note"] = (
            "model.cifar_stem was on: set conv1 = Conv2d(3, 64, 3, 1, 1, bias=False) and "
            "maxpool = Identity() before loading resnet.pth"
        )
    files = {path.name: str(path) for path in save_finetuned(classifier, out, metadata)}
    labels_used = out / LABELS_USED_FILE
    if splits.subset is not None:
        files[LABELS_USED_FILE] = str(write_labels_used(labels_used, splits.train, source))
    else:
        labels_used.unlink(missing_ok=True)  # an older run's list would describe other labels
    files[RESULTS_FILE] = str(out / RESULTS_FILE)
    write_text(out / RESULTS_FILE, json.dumps({**record, "files": files}, indent=2) + "\n")
    return files
