"""The baselines a trained encoder must beat, on their own: raw pixels and a random encoder.

Same k-NN as every other figure here (k=200 by default, T=0.1, cosine; the train split, or its
class-balanced subset, as bank; the full test split as queries).

    python -m benchmarks.quality.baselines --data cifar10 --backbone small_resnet18_w16
    python -m benchmarks.quality.baselines --data cifar10 --max-images 10000
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.accuracy.run import provenance
from byol.eval.validation import KNNValidator
from byol.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10", help="cifar10, digits or a labelled folder")
    parser.add_argument("--preset", default="cifar10", help="evaluation resolution and k")
    parser.add_argument("--backbone", default="small_resnet18_w16")
    parser.add_argument("--max-images", type=int, help="class-balanced bank subset")
    parser.add_argument("--cache-dir", default="~/.cache/byol")
    arguments = parser.parse_args()
    config = preset(arguments.preset)
    config.model.backbone = arguments.backbone
    config.data.max_images = arguments.max_images
    config.data.cache_dir = arguments.cache_dir
    started = time.perf_counter()
    validator = KNNValidator(config, torch.device("cpu"), source=arguments.data)
    figures = {
        name: {"top1": result.top1, "top5": result.top5}
        for name, result in validator.evaluate_baselines().items()
    }
    record = {
        **provenance("benchmarks.quality.baselines", arguments),
        "image_size": config.augment.image_size,
        "k": config.monitor.knn_k,
        "bank": arguments.max_images or "whole train split",
        "seconds": round(time.perf_counter() - started, 1),
        **figures,
    }
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
