"""Pre-training's value with 100%, 10% and 1% of the labels: k-NN, linear probe, fine-tuning and
the same network fine-tuned from scratch, each next to the raw-pixel baseline.

One short BYOL pre-training (``byol train``), then for every label fraction ``byol eval knn``,
``byol eval linear`` (the fast probe, with its raw-pixel probe) and ``byol finetune`` with and
without ``--from-scratch``, all through the command line a user would run. Writes every JSON
record to ``OUT/records.jsonl`` and the table to ``OUT/table.md``.

    python -m benchmarks.downstream.labels --out /tmp/labels --pretrain-epochs 10 \
        --pretrain-images 10000 --finetune-epochs 3 --few-label-epochs 15
    python -m benchmarks.downstream.labels --out /tmp/labels --checkpoint runs/my-run  # no pre-training
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.accuracy.run import provenance
from byol.cli.main import main as byol

FRACTIONS = (1.0, 0.1, 0.01)


def run(arguments: list[str]) -> dict[str, Any]:
    """``byol ARGUMENTS`` in this process; its last stdout line parsed as JSON."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = byol(arguments)
    if code != 0:
        raise SystemExit(f"byol {' '.join(arguments)} failed with exit code {code}")
    return dict(json.loads(printed.getvalue().strip().splitlines()[-1]))


def pretrain(arguments: argparse.Namespace) -> Path:
    """The BYOL run folder: ``--checkpoint``, or a ``--pretrain-epochs`` run of the cifar10
    preset on ``--data``."""
    if arguments.checkpoint:
        return Path(arguments.checkpoint)
    flags = [
        arguments.data,
        "--train.epochs",
        str(arguments.pretrain_epochs),
        "--model.backbone",
        arguments.backbone,
        "--train.output_dir",
        str(arguments.out),
        "--train.run_name",
        "pretrain",
        "--monitor.knn_every_epochs",
        str(arguments.pretrain_epochs),
        "--no-progress",
        *(
            ["--data.max_images", str(arguments.pretrain_images)]
            if arguments.pretrain_images
            else []
        ),
    ]
    if byol(["train", *flags]) != 0:
        raise SystemExit("the pre-training failed")
    return arguments.out / "pretrain"


def label_flags(fraction: float) -> list[str]:
    return [] if fraction >= 1.0 else ["--label-fraction", str(fraction)]


def evaluate(run_dir: Path, fraction: float, arguments: argparse.Namespace) -> dict[str, Any]:
    """k-NN, linear probe, fine-tuning and from scratch at one label fraction."""
    common = ["--checkpoint", str(run_dir), "--data", arguments.data, *label_flags(fraction)]
    folder = arguments.out / f"labels-{fraction:g}"
    epochs = arguments.finetune_epochs if fraction >= 1.0 else arguments.few_label_epochs
    tune = ["--epochs", str(epochs), "--no-progress"]
    knn = run(["eval", "knn", *common])
    linear = run(["eval", "linear", *common, "--out", str(folder / "linear.safetensors")])
    tuned = run(["finetune", *common, *tune, "--out", str(folder / "finetune")])
    scratch = run(["finetune", *common, *tune, "--from-scratch", "--out", str(folder / "scratch")])
    return {
        "fraction": fraction,
        "train_images": tuned["train_images"],
        "finetune_epochs": epochs,
        "knn": knn,
        "linear": linear,
        "finetune": tuned,
        "scratch": scratch,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Top-1 per label fraction, pre-training's value as fine-tuned minus from scratch."""
    lines = [
        "| labels | images | k-NN | k-NN raw pixels | linear | linear raw pixels "
        "| fine-tuned | from scratch | fine-tuned - scratch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        knn, linear = row["knn"], row["linear"]
        tuned, scratch = row["finetune"]["top1"], row["scratch"]["top1"]
        lines.append(
            f"| {row['fraction']:.0%} | {row['train_images']} | {knn['top1']:.2%} "
            f"| {knn['baselines']['raw_pixels']['top1']:.2%} | {linear['top1']:.2%} "
            f"| {linear['raw_pixels']['top1']:.2%} | {tuned:.2%} | {scratch:.2%} "
            f"| {100 * (tuned - scratch):+.2f} pts |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and results")
    parser.add_argument("--data", default="cifar10", help="labelled data (cifar10 or a folder)")
    parser.add_argument("--checkpoint", help="evaluate this run folder instead of pre-training")
    parser.add_argument("--backbone", default="small_resnet18_w16")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument(
        "--pretrain-images", type=int, help="pre-train on a class-balanced subset of this size"
    )
    parser.add_argument("--finetune-epochs", type=int, default=10, help="with all the labels")
    parser.add_argument("--few-label-epochs", type=int, default=30, help="with 10%% and 1%%")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=list(FRACTIONS),
        help="label fractions to evaluate (default: 1 0.1 0.01)",
    )
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run_dir = pretrain(arguments)
    pretrained = time.perf_counter()
    rows = []
    with (arguments.out / "records.jsonl").open("a") as records:
        for fraction in arguments.fractions:
            rows.append(evaluate(run_dir, fraction, arguments))
            records.write(json.dumps(rows[-1]) + "\n")
            records.flush()
    header = {
        **provenance("benchmarks.downstream.labels", arguments),
        "pretrain_seconds": round(pretrained - started, 1),
        "evaluation_seconds": round(time.perf_counter() - pretrained, 1),
    }
    text = json.dumps(header, indent=2) + "\n\n" + table(rows)
    (arguments.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
