"""lightly's CIFAR-10 benchmark recipe for BYOL, run with lightly's own modules.

lightly-ai/lightly ``docs/source/getting_started/benchmarks/cifar10_benchmark.py``, class
``BYOLModel`` (the recipe behind lightly's published table: 86.9% k-NN after 200 epochs at
batch 128): ``BYOLProjectionHead(D, 1024, 256)`` and ``BYOLPredictionHead(256, 1024, 256)``;
target = deep copies of backbone and projection head moved by ``update_momentum(m=0.99)`` at
the start of every step; loss ``0.5 * (ncs(p0, z1) + ncs(p1, z0))`` with
``NegativeCosineSimilarity``; ``SGD(all parameters, lr=0.06 * batch / 128, momentum=0.9,
weight_decay=5e-4)`` with ``CosineAnnealingLR(max_epochs)`` stepped per epoch, no warm-up;
views ``BYOLTransform`` of ``BYOLView1Transform``/``BYOLView2Transform`` at 32 px with Gaussian
blur off. Only the backbone is ours, so that both sides train the same network.

The training images are the same class-balanced subset our side trains on (served from the
same decoded uint8 pixels as PIL images), and the k-NN is ours (k=200, T=0.1, cosine; the
subset as bank, the full test split as queries, lightly's ImageNet normalisation).

    OMP_NUM_THREADS=1 python -m benchmarks.quality.lightly_recipe --epochs 10 \
        --max-images 10000 --batch-size 64 --knn-every 2 --out DIR/lightly.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.accuracy.run import provenance
from benchmarks.speed.peer_lightly import LightlyBYOL
from byol.backbones import build_backbone
from byol.config import IMAGENET_MEAN, IMAGENET_STD
from byol.data.registry import load_images
from byol.eval.validation import KNNValidator
from byol.presets import SHORT_RUN_BATCH_SIZE, preset

HEAD_WIDTH = 1024
MOMENTUM = 0.99


def knn_validator(arguments: argparse.Namespace) -> KNNValidator:
    """Our k-NN on the training subset (bank) and the test split, lightly's normalisation."""
    config = preset("cifar10", arguments.epochs)
    config.model.backbone = arguments.backbone
    config.augment.mean, config.augment.std = IMAGENET_MEAN, IMAGENET_STD
    config.data.cache_dir = arguments.cache_dir
    config.data.max_images = arguments.max_images
    return KNNValidator(config, torch.device("cpu"), source="cifar10")


def training_loader(arguments: argparse.Namespace) -> DataLoader:
    from lightly.transforms.byol_transform import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
    )

    transform = BYOLTransform(
        view_1_transform=BYOLView1Transform(input_size=32, gaussian_blur=0.0),
        view_2_transform=BYOLView2Transform(input_size=32, gaussian_blur=0.0),
    )
    source = load_images(
        "cifar10", "train", arguments.cache_dir, max_images=arguments.max_images, progress=False
    )
    return DataLoader(
        source.dataset(transform),
        batch_size=arguments.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=arguments.workers,
        persistent_workers=arguments.workers > 0,
        generator=torch.Generator().manual_seed(arguments.seed),
    )


def train_epoch(model: LightlyBYOL, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    """One epoch of lightly's ``BYOLModel.training_step``; returns the last loss."""
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.utils import update_momentum

    criterion = NegativeCosineSimilarity()
    loss = torch.zeros(())
    for (x0, x1), _ in loader:
        update_momentum(model.backbone, model.backbone_momentum, m=MOMENTUM)
        update_momentum(model.projection_head, model.projection_head_momentum, m=MOMENTUM)
        p0, z0 = model(x0), model.forward_momentum(x0)
        p1, z1 = model(x1), model.forward_momentum(x1)
        loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-images", type=int, default=10000)
    parser.add_argument(
        "--batch-size", type=int, default=SHORT_RUN_BATCH_SIZE, help="as our short-run preset"
    )
    parser.add_argument("--knn-every", type=int, default=2)
    parser.add_argument("--backbone", default="small_resnet18_w16")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache-dir", default="~/.cache/byol")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    arguments = parser.parse_args()
    torch.manual_seed(arguments.seed)
    validator = knn_validator(arguments)
    loader = training_loader(arguments)
    backbone = build_backbone(arguments.backbone, cifar_stem=True)
    model = LightlyBYOL(backbone.module, backbone.feature_dim, HEAD_WIDTH, 256)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.06 * arguments.batch_size / 128, momentum=0.9, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, arguments.epochs)
    curve: dict[int, float] = {}
    train_seconds = 0.0
    for epoch in range(1, arguments.epochs + 1):
        started = time.perf_counter()
        loss = train_epoch(model, loader, optimizer)
        scheduler.step()
        train_seconds += time.perf_counter() - started
        if epoch % arguments.knn_every == 0 or epoch == arguments.epochs:
            result = validator.evaluate(model.backbone)
            if result is not None:
                curve[epoch] = result.top1
        print(f"epoch {epoch}: loss {loss:.4f} k-NN {curve.get(epoch)}", flush=True)
        # Rewritten every epoch, so a run stopped early keeps its curve so far.
        write_record(arguments, epoch, len(loader), train_seconds, curve)


def write_record(
    arguments: argparse.Namespace,
    epoch: int,
    steps_per_epoch: int,
    train_seconds: float,
    curve: dict[int, float],
) -> None:
    record = {
        "implementation": "lightly 1.6.0, CIFAR-10 benchmark recipe (BYOLModel)",
        **provenance("benchmarks.quality.lightly_recipe", arguments),
        "seed": arguments.seed,
        "epochs": arguments.epochs,
        "epochs_done": epoch,
        "train_images": arguments.max_images,
        "batch_size": arguments.batch_size,
        "steps": epoch * steps_per_epoch,
        "train_seconds": round(train_seconds, 1),
        "knn_top1": curve.get(epoch),
        "knn_top1_by_epoch": curve,
    }
    Path(arguments.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
