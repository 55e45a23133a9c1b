"""End-to-end images/s of our fast path with and without ``torch.compile`` (a GPU probe).

The view source and train step of the engine (uint8 batches gathered on the device, batched
augmentation, bf16 autocast + channels_last step with LARS and the EMA update), timed in three
modes: eager, the augmentation compiled, and augmentation and model compiled. Random uint8
images stand in for CIFAR-10 (timing does not depend on pixel values). Each mode's figures are
appended to ``--out`` as JSON lines as soon as they exist, so a run cut short keeps them.

    python -m benchmarks.speed.compile_probe --out compile_probe.jsonl
    OMP_NUM_THREADS=1 python -m benchmarks.speed.compile_probe --backbone small_resnet18_w16 \
        --batch-size 64 --modes eager,augment+model --out compile_probe.jsonl  # the CPU budget's
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.speed.timing import autocast_forward, synchronize
from byol.augment import BatchedTwoViews, small_image_augment_config
from byol.backbones import build_backbone
from byol.config import OptimConfig
from byol.model import BYOL
from byol.optim import build_optimizer
from byol.train.step import StepHooks, training_step


def measure(mode: str, images: torch.Tensor, arguments: argparse.Namespace) -> dict[str, object]:
    """Warm up (compiling if asked), then time end to end and the augmentation alone."""
    device, batch = images.device, arguments.batch_size
    torch.manual_seed(0)
    model = BYOL(build_backbone(arguments.backbone, cifar_stem=True)).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.online, OptimConfig(batch_size=batch))
    augment = BatchedTwoViews(small_image_augment_config(32)).to(device)
    apply_views = augment.apply_params
    forward = model
    if "augment" in mode:
        apply_views = torch.compile(augment.apply_params, fullgraph=True)
    if "model" in mode:
        forward = torch.compile(model)
    generator = torch.Generator(device=device).manual_seed(0)

    def views() -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, images.shape[0], (batch,), device=device, generator=generator)
        return apply_views(images[rows], augment.sample_params(batch, 32, 32, device, generator))

    def one_step() -> None:
        hooks = StepHooks(forward=autocast_forward(forward, torch.bfloat16))
        training_step(model, optimizer, views(), 1.0, 0.99, hooks)

    start = time.perf_counter()
    for _ in range(arguments.warmup):
        one_step()
    synchronize(device)
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(arguments.steps):
        one_step()
    synchronize(device)
    seconds = time.perf_counter() - start
    augment_start = time.perf_counter()
    for _ in range(arguments.steps):
        views()
    synchronize(device)
    augment_seconds = time.perf_counter() - augment_start
    record = {
        "mode": mode,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "backbone": arguments.backbone,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "warmup_seconds_incl_compile": round(warmup_seconds, 1),
        "end_to_end_images_per_second": round(batch * arguments.steps / seconds, 1),
        "augmentation_alone_images_per_second": round(batch * arguments.steps / augment_seconds, 1),
    }
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--backbone", default="resnet18", help="e.g. small_resnet18_w16")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--modes", default="eager,augment,augment+model")
    arguments = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    images = torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, device=device)
    for mode in arguments.modes.split(","):
        record = measure(mode, images, arguments)
        print(json.dumps(record), flush=True)
        with open(arguments.out, "a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
