"""One-factor ablations of the CIFAR-10 recipe at a fixed, short number of epochs.

Every variant is a base recipe with a few config fields changed; all train the same backbone
(``small_resnet18_w16``) on the same class-balanced CIFAR-10 training subset at 32 px, batch
64 (the short-run preset's; ``--batch-size`` sets another), for the same epochs, and are scored
by the same k-NN (k=200, T=0.1, cosine; the training subset as bank, the full test split as
queries). The subset keeps a run under ten minutes on one core with AVX-512 BF16 (250-330
images/s). Results are appended as JSON lines, so a killed sweep keeps what it finished and a
rerun skips it.

    OMP_NUM_THREADS=1 python -m benchmarks.quality.ablate --epochs 10 --max-images 10000 \
        --knn-every 2 --out benchmarks/results/YYYY-MM-DD-NAME/ours.jsonl --variants preset sgd
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import torch

from benchmarks.accuracy.run import commit, machine
from byol.config_io import apply_dotted
from byol.presets import (
    SGD_HEAD_WIDTH,
    SGD_LEARNING_RATE,
    SGD_WEIGHT_DECAY,
    SHORT_RUN_BATCH_SIZE,
    preset,
)
from byol.train.engine import train

Overrides = dict[str, object]

COMMON: Overrides = {
    "model.backbone": "small_resnet18_w16",
    "data.num_workers": 1,
    "train.log_every_steps": 20,
    "train.checkpoint_every_epochs": 1000,
}

# The base is the short-run preset (``preset("cifar10", epochs)`` below 100 epochs): solo-learn's
# LARS recipe at base lr 0.25 (batch 64) with a tenth of the run as warm-up. Each variant
# changes one factor; ``sgd`` is lightly's CIFAR-10 benchmark recipe in our code (the
# 100-999-epoch preset).
SGD: Overrides = {
    "optim.optimizer": "sgd",
    "optim.base_learning_rate": SGD_LEARNING_RATE,
    "optim.weight_decay": SGD_WEIGHT_DECAY,
    "optim.momentum": 0.9,
    "optim.warmup_epochs": 0.0,
    "model.projector_hidden_dim": SGD_HEAD_WIDTH,
    "model.predictor_hidden_dim": SGD_HEAD_WIDTH,
}


def _views(**fields: object) -> Overrides:
    return {f"augment.view{v}.{k}": value for v in (1, 2) for k, value in fields.items()}


VARIANTS: dict[str, Overrides] = {
    "preset": {},
    "sgd": SGD,
    "lr1.0": {"optim.base_learning_rate": 1.0},
    "lr0.5": {"optim.base_learning_rate": 0.5},
    # The preset's own rate since it moved back from 0.1 (at batch 64); kept under the name
    # its records carry.
    "lr0.25": {"optim.base_learning_rate": 0.25},
    "lr0.1": {"optim.base_learning_rate": 0.1},
    "lr0.05": {"optim.base_learning_rate": 0.05},
    "no-trust-clip": {"optim.lars_trust_clip": False},
    "wd5e-4": {"optim.weight_decay": 5e-4},
    "warmup0": {"optim.warmup_epochs": 0.0},
    "warmup3": {"optim.warmup_epochs": 3.0},
    "tau0.996": {"target.tau_base": 0.996},
    "tau0.97": {"target.tau_base": 0.97},
    "heads1024": {"model.projector_hidden_dim": 1024, "model.predictor_hidden_dim": 1024},
    "crop0.2": _views(crop_scale_min=0.2),
    "fp32-contiguous": {"train.precision": "32-true", "train.channels_last": False},
    "per-image-views": {"augment.backend": "per_image"},
    # The preset again with other seeds (initialisation, batch order, views): the noise that a
    # one-factor difference has to exceed.
    "seed1": {"train.seed": 1},
    "seed2": {"train.seed": 2},
}


# The batch of the records made before the short-run preset went to 64: their names carry none.
UNNAMED_BATCH_SIZE = 256


def run_name(name: str, seed: int | None, batch_size: int) -> str:
    """The variant's run and metrics name: ``lr0.1``, ``lr0.1-seed2`` with ``--seed 2``,
    ``lr0.1-batch128-seed2`` with ``--batch-size 128`` too."""
    batch = "" if batch_size == UNNAMED_BATCH_SIZE else f"-batch{batch_size}"
    return f"{name}{batch}" + ("" if seed is None else f"-seed{seed}")


def metrics_path(folder: Path, name: str, seed: int | None, batch_size: int) -> Path:
    """Where the variant's ``metrics.csv`` is kept, beside the ``--out`` file."""
    return folder / f"{run_name(name, seed, batch_size)}.metrics.csv"


def run_variant(name: str, arguments: argparse.Namespace, work: Path) -> dict[str, object]:
    """Train one variant and return its figures (final and per evaluation) and settings."""
    epochs = arguments.epochs
    config = preset("cifar10", epochs)
    apply_dotted(config, {**COMMON, **VARIANTS[name], "data.cache_dir": arguments.cache_dir})
    if arguments.seed is not None:
        config.train.seed = arguments.seed
    config.data.max_images = arguments.max_images
    config.optim.batch_size = arguments.batch_size
    config.monitor.knn_every_epochs = arguments.knn_every or epochs
    name_on_disk = run_name(name, arguments.seed, arguments.batch_size)
    config.train.output_dir, config.train.run_name = str(work), name_on_disk
    shutil.rmtree(work / name_on_disk, ignore_errors=True)
    started = time.perf_counter()
    result = train(config, progress=False)
    seconds = time.perf_counter() - started
    with (work / name_on_disk / "metrics.csv").open() as handle:
        curve = {
            int(row["epoch"]): float(row["knn_top1"])
            for row in csv.DictReader(handle)
            if row.get("knn_top1")
        }
    shutil.copy(
        work / name_on_disk / "metrics.csv",
        metrics_path(work.parent, name, arguments.seed, arguments.batch_size),
    )
    shutil.rmtree(work / name_on_disk, ignore_errors=True)
    return {
        "variant": name,
        "seed": config.train.seed,
        "overrides": VARIANTS[name],
        "epochs": epochs,
        "train_images": arguments.max_images,
        "batch_size": config.optim.batch_size,
        "steps": result.steps,
        "knn_top1": result.knn_top1,
        "knn_top1_by_epoch": curve,
        "baselines": dict(result.baselines),
        "online_test_top1": result.online_test_top1,
        "final_loss": result.final_loss,
        "seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def is_recorded(record: dict[str, object], name: str, seed: int | None, batch_size: int) -> bool:
    """Whether ``record`` already holds variant ``name`` at ``seed`` (None: its own seed) and
    ``batch_size``."""
    return (
        record["variant"] == name
        and (seed is None or record.get("seed") == seed)
        and record.get("batch_size", UNNAMED_BATCH_SIZE) == batch_size
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-images", type=int, default=10000, help="class-balanced subset")
    parser.add_argument(
        "--batch-size", type=int, default=SHORT_RUN_BATCH_SIZE, help="the short-run preset's"
    )
    parser.add_argument("--knn-every", type=int, default=0, help="k-NN every N epochs (0: end)")
    parser.add_argument("--out", required=True, help="JSON-lines file the results go to")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--cache-dir", default="~/.cache/byol")
    parser.add_argument(
        "--seed", type=int, default=None, help="train.seed for every variant (default: its own)"
    )
    arguments = parser.parse_args()
    out = Path(arguments.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = (
        [json.loads(line) for line in out.read_text().splitlines() if line] if out.exists() else []
    )
    pending = [
        name
        for name in arguments.variants
        if not any(
            is_recorded(record, name, arguments.seed, arguments.batch_size) for record in records
        )
    ]
    # Another --out file in the same folder may hold the same variant and seed (another
    # machine, precision): its metrics file would be overwritten.
    paths = (
        metrics_path(out.parent, name, arguments.seed, arguments.batch_size) for name in pending
    )
    taken = [path for path in paths if path.exists()]
    if taken:
        raise SystemExit(
            f"{', '.join(map(str, taken))} already exist from another run of the same variant "
            "and seed; give --out a file in a new folder, or move those files away"
        )
    for name in pending:
        record = run_variant(name, arguments, out.parent / "runs")
        print(json.dumps(record), flush=True)
        with out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
