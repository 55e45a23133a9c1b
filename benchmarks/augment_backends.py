"""Throughput of the BYOL augmentation backends: images per second, both views.

Backends:
  reference  byol.augment.ReferenceTwoViews, one image at a time (what a DataLoader worker runs)
  batched    byol.augment.BatchedTwoViews on the whole uint8 batch
  kornia     kornia.augmentation.AugmentationSequential with the same operations (if installed;
             a comparison only, not a dependency of byol)

Cases: 32 px crops of 32 px images with batch 256 (CIFAR), 224 px crops of 256 px images with
batch 64 (ImageNet from the 256 px uint8 cache). Usage:

    python benchmarks/augment_backends.py --threads 2 \
        --output benchmarks/results/YYYY-MM-DD-augment-backends/README.md

``--device cuda`` adds GPU numbers for the batched and kornia backends (the reference
backend always runs on the CPU). ``--append`` adds a section to an existing results file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from byol.augment import BatchedTwoViews, ReferenceTwoViews, blur_kernel_size
from byol.config import AugmentConfig, ViewConfig


@dataclass(frozen=True)
class Case:
    name: str
    image_size: int
    input_size: int
    batch_size: int


CASES = (Case("32 px, B=256", 32, 32, 256), Case("224 px, B=64", 224, 256, 64))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _time(run: Callable[[], object], images: int, repeats: int, device: torch.device) -> float:
    """Median images/s over ``repeats`` timed runs after one warm-up."""
    run()
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def _kornia_pipeline(config: AugmentConfig) -> Callable[[torch.Tensor], object] | None:
    try:
        import kornia.augmentation as K
    except ImportError:
        return None

    def view(v: ViewConfig) -> torch.nn.Module:
        kernel = blur_kernel_size(config.image_size, v.blur_kernel_fraction)
        return K.AugmentationSequential(
            K.RandomResizedCrop(
                (config.image_size, config.image_size),
                scale=(v.crop_scale_min, v.crop_scale_max),
                ratio=(v.crop_ratio_min, v.crop_ratio_max),
                resample="BICUBIC",
            ),
            K.RandomHorizontalFlip(p=v.flip_prob),
            K.ColorJitter(v.brightness, v.contrast, v.saturation, v.hue, p=v.color_jitter_prob),
            K.RandomGrayscale(p=v.grayscale_prob),
            K.RandomGaussianBlur(
                (kernel, kernel), (v.blur_sigma_min, v.blur_sigma_max), p=v.blur_prob
            ),
            K.RandomSolarize(thresholds=0.0, additions=0.0, p=v.solarize_prob),
            K.Normalize(mean=torch.tensor(config.mean), std=torch.tensor(config.std)),
        )

    view1, view2 = view(config.view1), view(config.view2)

    def run(images: torch.Tensor) -> object:
        floats = images.float().div_(255)
        return view1(floats), view2(floats)

    run.modules = (view1, view2)  # type: ignore[attr-defined]
    return run


def measure(
    case: Case, device: torch.device, repeats: int, backends: list[str]
) -> dict[str, float]:
    """images/s of each backend for one case (reference always on the CPU)."""
    config = AugmentConfig(image_size=case.image_size)
    generator = torch.Generator().manual_seed(0)
    shape = (case.batch_size, 3, case.input_size, case.input_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    results: dict[str, float] = {}
    if "reference" in backends:
        reference = ReferenceTwoViews(config)

        def run_reference() -> None:
            for image in images:
                reference(image)

        results["reference (CPU)"] = _time(
            run_reference, case.batch_size, repeats, torch.device("cpu")
        )
    on_device = images.to(device)
    if "batched" in backends:
        batched = BatchedTwoViews(config).to(device)
        results[f"batched ({device.type})"] = _time(
            lambda: batched(on_device), case.batch_size, repeats, device
        )
    if "kornia" in backends:
        kornia_run = _kornia_pipeline(config)
        if kornia_run is not None:
            for module in kornia_run.modules:  # type: ignore[attr-defined]
                module.to(device)
            results[f"kornia ({device.type})"] = _time(
                lambda: kornia_run(on_device), case.batch_size, repeats, device
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op CPU threads")
    parser.add_argument("--device", default="cpu", help="device of the batched/kornia backends")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument(
        "--backends", default="reference,batched,kornia", help="comma-separated subset"
    )
    parser.add_argument("--output", type=Path, help="write (or append) a Markdown section here")
    parser.add_argument("--append", action="store_true", help="append instead of overwrite")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    backends = args.backends.split(",")

    load_before = _load()
    rows: dict[str, dict[str, float]] = {}
    for case in CASES:
        for backend, rate in measure(case, device, args.repeats, backends).items():
            rows.setdefault(backend, {})[case.name] = rate
            print(f"{case.name:14s} {backend:18s} {rate:10.0f} images/s", flush=True)

    try:
        import kornia

        kornia_version = kornia.__version__
    except ImportError:
        kornia_version = "not installed"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    lines = [
        f"## {_cpu_name()}, {os.cpu_count()} logical CPUs, {args.threads} torch threads"
        + (f", GPU {gpu}" if device.type == "cuda" else ""),
        "",
        f"- command: `{command}`",
        f"- versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, kornia {kornia_version}",
        f"- load average (1/5/15 min) before / after: {load_before} / {_load()}",
        f"- median of {args.repeats} timed runs after a warm-up; images/s counts images, "
        "each giving two views",
        "",
        "| backend | " + " | ".join(c.name for c in CASES) + " |",
        "|---|" + "---:|" * len(CASES),
    ]
    for backend, by_case in rows.items():
        cells = [f"{by_case[c.name]:,.0f}" if c.name in by_case else "-" for c in CASES]
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if args.append and args.output.exists() else "w"
        with args.output.open(mode) as handle:
            handle.write(("\n" if mode == "a" else "") + section)


if __name__ == "__main__":
    main()
