"""Peer baseline for the CPU accuracy benchmark: lightly's strongest BYOL recipe for a budget.

lightly's CIFAR-10 benchmark recipe (``BYOLModel`` of ``cifar10_benchmark.py``, the one behind
its published table; see :mod:`benchmarks.quality.lightly_recipe`): lightly's heads 1024 wide,
``NegativeCosineSimilarity`` averaged over the two directions, ``update_momentum(m=0.99)``,
SGD lr 0.06 x batch/128 with momentum 0.9 and weight decay 5e-4, cosine learning rate, no
warm-up, ``BYOLTransform`` per image at 32 px with Gaussian blur off. The schedule length is
set from the throughput of steps 10-40 so that it ends with the budget, as for our run
(:mod:`benchmarks.accuracy.budget`; the cosine runs per step over the budgeted steps instead of
per epoch). The k-NN evaluation is ours (k=200, T=0.1, cosine), on the backbone with lightly's
ImageNet normalisation.

    python -m benchmarks.accuracy.lightly_budget --minutes 30 \
        --out benchmarks/results/YYYY-MM-DD-cifar10-cpu-30min
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.accuracy.budget import steps_for_budget
from benchmarks.accuracy.run import provenance
from benchmarks.quality.lightly_recipe import HEAD_WIDTH, MOMENTUM
from benchmarks.speed.peer_lightly import LightlyBYOL
from byol.backbones import build_backbone
from byol.config import IMAGENET_MEAN, IMAGENET_STD
from byol.data.cifar10 import unpack_cifar10_jpg
from byol.eval.validation import KNNValidator
from byol.presets import SHORT_RUN_BATCH_SIZE, preset

# Throughput is measured from step PROBE_FROM to PROBE_TO: the first steps start the workers.
PROBE_FROM, PROBE_TO = 10, 40


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--backbone", default="small_resnet18_w16")
    # Our short-run preset's batch, so that both sides take the same number of steps per image.
    parser.add_argument("--batch-size", type=int, default=SHORT_RUN_BATCH_SIZE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default="~/.cache/byol")
    parser.add_argument("--out", required=True)
    # The model's initialisation and the data order; repeats of the protocol differ only here.
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def training_loader(arguments: argparse.Namespace) -> DataLoader:
    """lightly's benchmark views (blur off) of the CIFAR-10 training JPEGs, decoded per image."""
    from lightly.transforms.byol_transform import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
    )
    from torchvision.datasets import ImageFolder

    root = unpack_cifar10_jpg(Path(arguments.cache_dir).expanduser())
    transform = BYOLTransform(
        view_1_transform=BYOLView1Transform(input_size=32, gaussian_blur=0.0),
        view_2_transform=BYOLView2Transform(input_size=32, gaussian_blur=0.0),
    )
    return DataLoader(
        ImageFolder(str(root / "train"), transform=transform),
        batch_size=arguments.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=arguments.workers,
        persistent_workers=True,
    )


@dataclass(frozen=True)
class BudgetRun:
    steps: int
    images: int
    train_seconds: float
    probe_images_per_second: float


def train_for_budget(
    model: LightlyBYOL, loader: DataLoader, batch_size: int, budget_seconds: float
) -> BudgetRun:
    """lightly's ``BYOLModel.training_step`` until the budget's steps are done; the steps are
    fixed at step ``PROBE_TO`` from the throughput of steps ``PROBE_FROM`` to ``PROBE_TO``."""
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.utils import update_momentum
    from lightly.utils.scheduler import cosine_schedule

    criterion = NegativeCosineSimilarity()
    peak_lr = 0.06 * batch_size / 128
    optimizer = torch.optim.SGD(model.parameters(), lr=peak_lr, momentum=0.9, weight_decay=5e-4)
    started = time.perf_counter()
    total_steps, step, images, probe_started, rate = None, 0, 0, started, 0.0
    while total_steps is None or step < total_steps:
        for (x0, x1), _ in loader:
            for group in optimizer.param_groups:
                group["lr"] = peak_lr * cosine_schedule(step, total_steps or 10**9, 1.0, 0.0)
            update_momentum(model.backbone, model.backbone_momentum, m=MOMENTUM)
            update_momentum(model.projection_head, model.projection_head_momentum, m=MOMENTUM)
            loss = 0.5 * (
                criterion(model(x0), model.forward_momentum(x1))
                + criterion(model(x1), model.forward_momentum(x0))
            )
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            images += x0.shape[0]
            if step == PROBE_FROM:
                probe_started = time.perf_counter()
            if total_steps is None and step == PROBE_TO:
                rate = (PROBE_TO - PROBE_FROM) * batch_size / (time.perf_counter() - probe_started)
                left = budget_seconds - (time.perf_counter() - started)
                total_steps = step + (steps_for_budget(left, rate, batch_size) if left > 0 else 0)
                print(f"{rate:.0f} images/s -> {total_steps} steps", flush=True)
            if step % 50 == 0:
                print(f"step {step}/{total_steps} loss {loss.item():.4f}", flush=True)
            if total_steps is not None and step >= total_steps:
                break
    return BudgetRun(step, images, time.perf_counter() - started, rate)


def main() -> None:
    arguments = parse_arguments()
    torch.manual_seed(arguments.seed)
    loader = training_loader(arguments)
    backbone = build_backbone(arguments.backbone)
    model = LightlyBYOL(backbone.module, backbone.feature_dim, HEAD_WIDTH, 256)
    budget = arguments.minutes * 60
    run = train_for_budget(model, loader, arguments.batch_size, budget)

    config = preset("cifar10")
    config.augment.mean, config.augment.std = IMAGENET_MEAN, IMAGENET_STD
    config.data.cache_dir = arguments.cache_dir
    result = KNNValidator(config, torch.device("cpu"), source="cifar10").evaluate(model.backbone)
    if result is None:
        raise RuntimeError("the CIFAR-10 k-NN validator found no labelled test split")
    record = {
        "implementation": "lightly 1.6.0, CIFAR-10 benchmark recipe (BYOLModel)",
        **provenance("benchmarks.accuracy.lightly_budget", arguments),
        "backbone": arguments.backbone,
        "seed": arguments.seed,
        "steps": run.steps,
        "images_seen": run.images,
        "train_seconds": round(run.train_seconds, 1),
        "budget_seconds": budget,
        "probe_images_per_second": round(run.probe_images_per_second, 1),
        "knn_top1": result.top1,
        "knn_top5": result.top5,
    }
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lightly.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
