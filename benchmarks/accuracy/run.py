"""Accuracy benchmark: pre-train with a preset, then k-NN and linear probe on CIFAR-10.

    python -m benchmarks.accuracy.run --preset cifar10 --epochs 100 \
        --out benchmarks/results/YYYY-MM-DD-cifar10-100ep
    python -m benchmarks.accuracy.run --preset cifar10 --minutes 30 \
        --out benchmarks/results/YYYY-MM-DD-cifar10-30min  # a wall-clock budget

With ``--minutes`` the run's length in steps is chosen from the steady throughput of a 100-step
probe run so that the whole schedule (warm-up, cosine learning rate, tau) completes inside the
wall-clock budget (:mod:`benchmarks.accuracy.budget`); the recipe is the preset's for the
epochs that hold those steps, and ``train.max_steps`` ends it at the budget. Writes
``result.json`` (figures, command, commit, machine) and copies the run's metrics and report
into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.accuracy.budget import epochs_covering, steady_images_per_second, steps_for_budget
from byol.config_io import apply_dotted, parse_scalar
from byol.eval.baselines import PixelEncoder
from byol.eval.batches import eval_batches
from byol.eval.features import extract_features
from byol.eval.linear import linear_probe
from byol.eval.validation import KNNValidator
from byol.model import build_model
from byol.presets import preset
from byol.train.engine import train


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def commit() -> str:
    if os.environ.get("BYOL_COMMIT"):
        return os.environ["BYOL_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(module: str, arguments: argparse.Namespace) -> dict[str, str]:
    """Command (as run, from the parsed flags), commit, machine and date of a benchmark result."""
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(arguments).items() if v)
    return {
        "command": f"python -m {module} {flags}",
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def evaluate(config, encoder: torch.nn.Module, device: torch.device) -> dict[str, float]:  # type: ignore[no-untyped-def]
    validator = KNNValidator(config, device, source=config.data.val_source or "cifar10")
    knn = validator.evaluate(encoder)
    if knn is None:
        raise ValueError(
            f"no labelled split to evaluate on for data.val_source={config.data.val_source!r}; "
            "set it to a labelled dataset such as cifar10"
        )
    probe = _linear(validator, encoder, config, device)
    return {
        "knn_top1": knn.top1,
        "knn_top5": knn.top5,
        "linear_top1": probe.top1,
        "linear_top5": probe.top5,
    }


def raw_pixels(config, device: torch.device) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The raw-pixel baseline (k-NN and linear probe) on the same splits as :func:`evaluate`."""
    return evaluate(config, PixelEncoder(config.augment.mean, config.augment.std), device)


def _linear(validator: KNNValidator, encoder: torch.nn.Module, config, device: torch.device):  # type: ignore[no-untyped-def]
    feats = {}
    for name, cache in (("train", validator.bank), ("test", validator.queries)):
        feats[name] = extract_features(
            encoder, eval_batches(cache.images, cache.labels, config.augment, 512, device), device
        )
    return linear_probe(
        feats["train"].features,
        feats["train"].labels,
        feats["test"].features,
        feats["test"].labels,
        device=device,
    )


PROBE_STEPS, PROBE_WINDOW = 100, 20


def budget_plan(arguments: argparse.Namespace, out: Path) -> tuple[int, int, float]:
    """``(epochs, steps, images/s)`` that fit ``--minutes``, from a 100-step probe run's
    steady throughput (see :mod:`benchmarks.accuracy.budget`)."""
    # Throughput of the short-run recipe: a budget on a CPU is a short run.
    probe = preset(arguments.preset, 10)
    apply_dotted(probe, {k: parse_scalar(v) for k, v in (s.split("=", 1) for s in arguments.set)})
    probe.train.max_steps, probe.train.log_every_steps = PROBE_STEPS, PROBE_WINDOW
    probe.monitor.knn_every_epochs, probe.data.val_source = 0, None
    probe.train.output_dir, probe.train.run_name = str(out / "probe-runs"), "probe"
    shutil.rmtree(out / "probe-runs", ignore_errors=True)  # left by a run that was stopped
    result = train(probe, progress=False)
    with (result.run_dir / "metrics.csv").open() as handle:
        # End-of-epoch evaluation rows have no throughput.
        rates = [
            float(row["images_per_second"])
            for row in csv.DictReader(handle)
            if row["images_per_second"]
        ]
    shutil.rmtree(out / "probe-runs", ignore_errors=True)
    rate = steady_images_per_second(rates)
    steps = steps_for_budget(arguments.minutes * 60, rate, probe.optim.batch_size)
    # Full batches per epoch, as the run's sampler takes them (N // B).
    steps_per_epoch = result.num_images // probe.optim.batch_size
    epochs = epochs_covering(steps, steps_per_epoch)
    print(f"{rate:.0f} images/s -> {steps} steps ({epochs} epochs) in {arguments.minutes} min")
    return epochs, steps, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="cifar10")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--minutes", type=float, help="wall-clock training budget")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument(
        "--knn-every", type=int, default=0, help="k-NN monitor every N epochs during training"
    )
    parser.add_argument(
        "--eval-checkpoints",
        action="store_true",
        help="also evaluate every epoch checkpoint (k-NN and linear per checkpoint)",
    )
    arguments = parser.parse_args()
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, budget_steps, probe_rate = arguments.epochs, None, None
    if arguments.minutes is not None:
        epochs, budget_steps, probe_rate = budget_plan(arguments, out)
    # The preset's recipe follows the run length, as `byol train --train.epochs N` does.
    config = preset(arguments.preset, epochs)
    apply_dotted(config, {k: parse_scalar(v) for k, v in (s.split("=", 1) for s in arguments.set)})
    if budget_steps is not None:
        config.train.max_steps = budget_steps
    # Off by default so that train_seconds times training alone.
    config.monitor.knn_every_epochs = arguments.knn_every
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # The random encoder of the baseline: the architecture, seeded as the run is.
    torch.manual_seed(config.train.seed)
    random_encoder = build_model(config.model).online.encoder

    # Training first, so that with --minutes it overlaps the other side's training, as the
    # probe did; the baselines are evaluated afterwards.
    started = time.perf_counter()
    result = train(config, progress=True)
    train_seconds = time.perf_counter() - started
    baseline = evaluate(config, random_encoder.to(device), device)
    print("random encoder:", baseline, flush=True)
    pixels = raw_pixels(config, device)
    print("raw pixels:", pixels, flush=True)
    from byol.checkpoint import load_encoder_from_checkpoint

    encoder, _ = load_encoder_from_checkpoint(result.checkpoint)
    figures = evaluate(config, encoder.to(device), device)
    print("BYOL encoder:", figures, flush=True)
    per_checkpoint = {}
    if arguments.eval_checkpoints:
        for path in sorted((result.run_dir / "checkpoints").glob("epoch-*.pt")):
            encoder, _ = load_encoder_from_checkpoint(path)
            per_checkpoint[path.stem] = evaluate(config, encoder.to(device), device)
            print(path.stem, per_checkpoint[path.stem], flush=True)
    record = {
        "command": "python " + " ".join(sys.argv),
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "preset": arguments.preset,
        "overrides": arguments.set,
        "epochs": config.train.epochs,
        "steps": result.steps,
        "train_seconds": round(train_seconds, 1),
        "budget_seconds": None if arguments.minutes is None else arguments.minutes * 60,
        "probe_images_per_second": None if probe_rate is None else round(probe_rate, 1),
        "byol": figures,
        "random_init": baseline,
        "raw_pixels": pixels,
        "per_checkpoint": per_checkpoint,
        "data": "CIFAR-10 JPEG copy (cifar10-jpg.tar.gz), 50k train / 10k test",
    }
    (out / "result.json").write_text(json.dumps(record, indent=2))
    for name in ("metrics.csv", "report.html", "config.yaml"):
        if (result.run_dir / name).exists():
            shutil.copy(result.run_dir / name, out / name)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
