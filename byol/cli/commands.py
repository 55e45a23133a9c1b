"""What each ``byol`` sub-command does; argument parsing lives in :mod:`byol.cli.main`."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from byol.atomic import WriteError, remove_stale_temporaries, write_together
from byol.checkpoint import checkpoint_file
from byol.cli.config_flags import config_from_arguments, flag_overrides
from byol.config import Config
from byol.config_io import apply_dotted
from byol.data.registry import load_images
from byol.eval.features import extract_features
from byol.eval.linear import linear_probe, save_linear_classifier
from byol.eval.report import write_report
from byol.export.checkpoint import load_encoder_from_checkpoint
from byol.model import build_model
from byol.train.engine import train as run_training
from byol.train.validation import KNNValidator, load_labelled_splits
from byol.train.views import eval_batches


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train(arguments: argparse.Namespace) -> int:
    """Pre-train, then print the trained and a random encoder's k-NN accuracy side by side."""
    started = time.perf_counter()
    if arguments.resume:
        _refuse_config_with_resume(arguments)
        result = run_training(
            Config(),
            resume=arguments.resume,
            progress=not arguments.no_progress,
            resume_overrides=flag_overrides(arguments),
            allow_data_change=arguments.allow_data_change,
        )
        if not result.is_global_zero:
            return 0
        if result.already_finished:
            print(
                f"run {result.run_dir} already finished ({result.steps} steps); nothing to do. "
                f"Checkpoint: {result.checkpoint}"
            )
            return 0
        config = load_encoder_from_checkpoint(result.checkpoint)[1]
    else:
        config = config_from_arguments(arguments)
        if arguments.data:
            apply_dotted(config, {"data.source": arguments.data})
            if config.data.val_source is not None:
                config.data.val_source = arguments.data
        result = run_training(config, progress=not arguments.no_progress)
        if not result.is_global_zero:  # the other processes of a multi-process run
            return 0
    print(
        f"trained to step {result.steps} on {result.num_images} images in "
        f"{time.perf_counter() - started:.0f} s; final loss {result.final_loss:.4f}"
    )
    print(f"run folder: {result.run_dir}")
    print(f"checkpoint: {result.checkpoint}")
    if result.knn_top1 is not None:
        baseline = random_encoder_knn(config)
        print(
            f"k-NN top-1 (k={config.monitor.knn_k}): BYOL encoder {result.knn_top1:.2%} | "
            f"random encoder {baseline:.2%}"
        )
    print(f"report: {result.run_dir / 'report.html'}")
    if result.skipped_steps:
        print(
            f"skipped {result.skipped_steps} steps with a non-finite loss or gradient "
            "(train.nonfinite=skip)"
        )
    if result.skipped_images is not None:
        count = len(result.skipped_images.read_bytes().splitlines())
        print(f"skipped {count} unreadable images (list in {result.skipped_images})")
    return 0


def _refuse_config_with_resume(arguments: argparse.Namespace) -> None:
    """A resumed run keeps its saved configuration; say so instead of ignoring new settings.
    (The ``--section.field`` flags that may change, such as ``--train.devices``, are checked by
    :func:`byol.train.run_dir.apply_resume_overrides`.)"""
    given = []
    if arguments.config:
        given.append("--config")
    if arguments.data:
        given.append(f"the data argument {arguments.data!r}")
    if given:
        raise ValueError(
            f"--resume continues a run with its saved configuration, so {', '.join(given)} "
            "cannot change it; drop them, or start a new run"
        )


def random_encoder_knn(config: Config) -> float:
    """k-NN top-1 of a randomly initialised encoder of the run's architecture (same seed)."""
    torch.manual_seed(config.train.seed)
    encoder = build_model(config.model).online.encoder.to(_device())
    validator = KNNValidator(config, _device())
    result = validator.evaluate(encoder)
    return result.top1 if result is not None else float("nan")


def _encoder_and_config(arguments: argparse.Namespace) -> tuple[nn.Module, Config]:
    if not arguments.checkpoint:
        raise ValueError("give --checkpoint FILE (or a run folder)")
    encoder, config = load_encoder_from_checkpoint(checkpoint_file(arguments.checkpoint))
    if getattr(arguments, "random_init", False):
        torch.manual_seed(config.train.seed)
        encoder = build_model(config.model).online.encoder
    return encoder.to(_device()).eval(), config


def _labelled_splits(arguments: argparse.Namespace, config: Config) -> tuple[str, Config]:
    source = arguments.data or config.data.val_source or config.data.source
    config.data.max_images = getattr(arguments, "max_images", None)
    return source, config


def eval_knn(arguments: argparse.Namespace) -> int:
    encoder, config = _encoder_and_config(arguments)
    source, config = _labelled_splits(arguments, config)
    config.monitor.knn_k, config.monitor.knn_temperature = arguments.k, arguments.temperature
    validator = KNNValidator(config, _device(), source=source, batch_size=arguments.batch_size)
    result = validator.evaluate(encoder)
    if result is None:  # pragma: no cover - validator is enabled
        return 1
    print(
        json.dumps(
            {
                "data": source,
                "k": arguments.k,
                "temperature": arguments.temperature,
                "top1": result.top1,
                "top5": result.top5,
            }
        )
    )
    return 0


def eval_linear(arguments: argparse.Namespace) -> int:
    encoder, config = _encoder_and_config(arguments)
    source, config = _labelled_splits(arguments, config)
    if arguments.protocol == "official":
        from byol.cli.official_linear import run_official_linear

        top1, top5 = run_official_linear(encoder, config, source, arguments)
        print(json.dumps({"data": source, "protocol": "official", "top1": top1, "top5": top5}))
        return 0
    features = {
        split: extract_features(
            encoder,
            eval_batches(
                cache.images, cache.labels, config.augment, arguments.batch_size, _device()
            ),
            _device(),
        )
        for split, cache in zip(
            ("train", "test"), load_labelled_splits(config, source), strict=True
        )
    }
    result = linear_probe(
        features["train"].features,
        features["train"].labels,
        features["test"].features,
        features["test"].labels,
    )
    out = (
        Path(arguments.out)
        if arguments.out
        else (checkpoint_file(arguments.checkpoint).parent / "linear_classifier.safetensors")
    )
    summary = {
        "data": source,
        "protocol": "fast",
        "top1": result.top1,
        "top5": result.top5,
        "weight_decay": result.weight_decay,
    }
    try:
        save_linear_classifier(result.classifier, out)
    except WriteError as error:
        # The accuracy is the result: print it before the error about the classifier file.
        print(json.dumps({**summary, "classifier": None}), flush=True)
        raise ValueError(
            f"{error}; the accuracy above is complete, only the classifier was not saved "
            "(pass --out FILE to save it elsewhere)"
        ) from error
    print(json.dumps({**summary, "classifier": str(out)}))
    return 0


def embed(arguments: argparse.Namespace) -> int:
    _check_batch_size(arguments.batch_size)
    out = Path(arguments.out)
    if out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")  # what np.save would name it
    encoder, config = _encoder_and_config(arguments)
    cache = load_images(
        arguments.data,
        arguments.split,
        config.data.cache_dir,
        cache_size=config.data.cache_size,
        image_size=config.augment.image_size,
    ).cache()
    features = extract_features(
        encoder,
        eval_batches(cache.images, cache.labels, config.augment, arguments.batch_size, _device()),
        _device(),
        progress=True,
    )
    paths = out.with_suffix(".paths.txt")
    write_features(out, features.features.numpy(), paths, cache.paths)
    print(f"wrote {tuple(features.features.shape)} features to {out} and image paths to {paths}")
    return 0


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size} must be at least 1 (e.g. 256)")


def write_features(out: Path, features: np.ndarray, paths_file: Path, paths: list[str]) -> None:
    """Write ``features`` (``.npy``) and their image paths, each atomically; the old pair stays
    whole until both new files are complete (paths are renamed last, after the features)."""
    buffer = io.BytesIO()
    np.save(buffer, features)
    listing = ("\n".join(paths) + "\n").encode("utf-8", errors="surrogateescape")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent)
    write_together({out: buffer.getvalue(), paths_file: listing})


def export(arguments: argparse.Namespace) -> int:
    from byol.export import export_encoder

    result = export_encoder(
        checkpoint_file(arguments.checkpoint),
        arguments.out,
        onnx=False if arguments.no_onnx else None,
    )
    for path in result.files:
        print(path)
    if result.onnx_note:
        print(f"byol: note: {result.onnx_note}", file=sys.stderr)
    return 0


def report(arguments: argparse.Namespace) -> int:
    print(write_report(arguments.run_dir))
    return 0


def shard(arguments: argparse.Namespace) -> int:
    from byol.data.shards import write_shards

    source = load_images(
        arguments.data, arguments.split, arguments.cache_dir, max_images=arguments.max_images
    )
    shards = write_shards(source, arguments.out, arguments.images_per_shard)
    print(f"wrote {shards.num_images} images in {len(shards.files)} shards to {shards.root}")
    if shards.skipped:
        path, reason = shards.skipped[0]
        print(
            f"skipped {len(shards.skipped)} unreadable images, as training would (first: "
            f"{path}: {reason})"
        )
    return 0
