"""What each ``byol`` sub-command does; argument parsing lives in :mod:`byol.cli.main`."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from byol.atomic import WriteError, remove_stale_temporaries, write_bytes, write_together
from byol.checkpoint import checkpoint_file, load_encoder_from_checkpoint
from byol.cli.config_flags import ResolvedConfig, flag_overrides
from byol.config import Config, LinearEvalConfig
from byol.data.cache import ImageCache
from byol.data.registry import load_images
from byol.downstream.splits import LabelledSplits, prepare_splits, write_labels_used
from byol.eval.baselines import PixelEncoder
from byol.eval.batches import eval_batches
from byol.eval.features import extract_features
from byol.eval.linear import LinearProbeResult, linear_probe, save_linear_classifier
from byol.eval.linear_official import linear_eval_official_on_splits
from byol.eval.report import write_report
from byol.eval.validation import KNNValidator
from byol.model import build_model
from byol.train.engine import TrainResult
from byol.train.engine import train as run_training


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
        resolved: ResolvedConfig = arguments.resolved  # byol.cli.main.prepare checked it
        config = resolved.config
        if _first_process():
            print("\n".join(resolved.notes), flush=True)
        result = run_training(config, progress=not arguments.no_progress)
        if not result.is_global_zero:  # the other processes of a multi-process run
            return 0
    print_summary(result, config, time.perf_counter() - started)
    return 0


def print_summary(result: TrainResult, config: Config, seconds: float) -> None:
    """What the run did, what it measured against which baselines, and what to run next."""
    minutes, rest = divmod(round(seconds), 60)
    print(
        f"trained {result.steps} steps on {result.num_images} images of {config.data.source} "
        f"in {minutes} min {rest:02d} s; final BYOL loss {result.final_loss:.4f}"
    )
    if result.knn_top1 is not None:
        title = f"k-NN top-1 on the {config.data.val_source} test split (k={config.monitor.knn_k}, cosine)"
        _print_comparison(title, {"encoder": result.knn_top1, **result.baselines})
    if "encoder" in result.linear_probe:
        title = (
            f"linear probe top-1 on the {config.data.val_source} test split (logistic "
            "regression on frozen features)"
        )
        _print_comparison(title, result.linear_probe)
    if "encoder" in result.linear_probe_few_labels:
        per_class = config.monitor.final_linear_probe_labels_per_class
        title = (
            f"linear probe top-1 with {per_class} labels per class (the paper's few-label setting)"
        )
        _print_comparison(title, result.linear_probe_few_labels)
    if result.online_test_top1 is not None:
        print(
            f"online linear classifier (trained beside BYOL on frozen features), test top-1: "
            f"{result.online_test_top1:.2%}"
        )
    if result.collapsed:
        print("warning: the projections collapsed during the run (see the report's monitors)")
    if result.skipped_steps:
        print(
            f"skipped {result.skipped_steps} steps with a non-finite loss or gradient "
            "(train.nonfinite=skip)"
        )
    if result.skipped_images is not None:
        count = len(result.skipped_images.read_bytes().splitlines())
        print(f"skipped {count} unreadable images (list in {result.skipped_images})")
    run = result.run_dir
    print(f"run folder: {run} (checkpoint {result.checkpoint.name}, config.yaml, metrics.csv)")
    print(f"report: {run / 'report.html'} (curves, baselines, nearest-neighbour retrievals)")
    print(
        f"next: byol eval linear --checkpoint {run}  |  byol export --checkpoint {run} "
        f"--out {run / 'export'}  |  byol embed DATA --checkpoint {run} --out features.npy"
    )


def _print_comparison(title: str, figures: Mapping[str, float]) -> None:
    """``title: BYOL encoder X | raw pixels Y | random encoder Z`` and the verdict."""
    pixels = figures.get("raw_pixels", math.nan)
    random = figures.get("random_encoder", math.nan)
    print(
        f"{title}: BYOL encoder {figures['encoder']:.2%} | raw pixels {pixels:.2%} | "
        f"random encoder {random:.2%}"
    )
    print(f"  {_verdict(figures['encoder'], pixels, random)}")


def _verdict(trained: float, pixels: float, random: float) -> str:
    """One sentence on whether the encoder beat its baselines."""
    best_name, best = max((("raw pixels", pixels), ("the random encoder", random)), key=_second)
    if math.isnan(best):
        return "no baseline measured"
    points = 100 * (trained - best)
    if points > 0:
        return f"the encoder beats the best baseline ({best_name}) by {points:.1f} points"
    return (
        f"the encoder is {-points:.1f} points below {best_name}: train longer "
        "(train.epochs) or check the augmentation suits the images"
    )


def _second(item: tuple[str, float]) -> float:
    return -math.inf if math.isnan(item[1]) else item[1]


def _first_process() -> bool:
    """False in the processes a launcher (Fabric, torchrun, srun) starts besides the first."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if variable in os.environ:
            return os.environ[variable] == "0"
    return True


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


def _encoder_and_config(arguments: argparse.Namespace) -> tuple[nn.Module, Config]:
    if not arguments.checkpoint:
        raise ValueError("give --checkpoint FILE (or a run folder)")
    encoder, config = load_encoder_from_checkpoint(checkpoint_file(arguments.checkpoint))
    if getattr(arguments, "random_init", False):
        torch.manual_seed(config.train.seed)
        encoder = build_model(config.model).online.encoder
    return encoder.to(_device()).eval(), config


def _labelled_splits(arguments: argparse.Namespace, config: Config) -> tuple[str, Config]:
    """The labelled data to score on, and ``config`` with ``--max-images`` as its subset."""
    source = arguments.data or config.data.val_source or config.data.source
    data = replace(config.data, max_images=getattr(arguments, "max_images", None))
    return source, replace(config, data=data)


def splits_from_flags(config: Config, source: str, arguments: argparse.Namespace) -> LabelledSplits:
    """``source``'s labelled splits at ``--image-size``, with the label subset of
    ``--label-fraction`` / ``--labels-per-class`` / ``--label-seed``."""
    return prepare_splits(
        config,
        source,
        arguments.image_size,
        label_fraction=arguments.label_fraction,
        labels_per_class=arguments.labels_per_class,
        seed=arguments.label_seed,
    )


def eval_knn(arguments: argparse.Namespace) -> int:
    encoder, config = _encoder_and_config(arguments)
    source, config = _labelled_splits(arguments, config)
    monitor = replace(config.monitor, knn_k=arguments.k, knn_temperature=arguments.temperature)
    config = replace(config, monitor=monitor)
    prepared = splits_from_flags(config, source, arguments)
    config = prepared.config
    validator = KNNValidator(
        config,
        _device(),
        source=source,
        batch_size=arguments.batch_size,
        splits=(prepared.train_for_features(), prepared.test),
    )
    result = validator.evaluate(encoder)
    if result is None:  # pragma: no cover - validator is enabled
        return 1
    record: dict[str, object] = {
        "data": source,
        "k": arguments.k,
        "temperature": arguments.temperature,
        "top1": result.top1,
        "top5": result.top5,
        **prepared.summary(),
    }
    if prepared.subset is not None:  # the bank's images, beside the checkpoint
        listing = checkpoint_file(arguments.checkpoint).parent / "knn_labels_used.txt"
        record["labels_used"] = str(write_labels_used(listing, prepared.train, source))
    if not arguments.no_baselines:
        record["baselines"] = {
            name: {"top1": r.top1, "top5": r.top5}
            for name, r in validator.evaluate_baselines().items()
        }
    print(json.dumps(record))
    return 0


def eval_linear(arguments: argparse.Namespace) -> int:
    encoder, config = _encoder_and_config(arguments)
    source, config = _labelled_splits(arguments, config)
    prepared = splits_from_flags(config, source, arguments)
    config = prepared.config
    splits = (prepared.train_for_features(), prepared.test)
    out = (
        Path(arguments.out)
        if arguments.out
        else (checkpoint_file(arguments.checkpoint).parent / "linear_classifier.safetensors")
    )
    images = {**prepared.summary(), "labels_used": _labels_used(prepared, source, out)}
    pixels: dict[str, object] = {}
    if not arguments.no_baselines:
        pixel_encoder = PixelEncoder(config.augment.mean, config.augment.std).to(_device())
        probe = _fast_probe(pixel_encoder, splits, config, arguments.batch_size)
        pixels = {"top1": probe.top1, "top5": probe.top5, "protocol": "fast"}
    if arguments.protocol == "official":
        official = linear_eval_official_on_splits(
            encoder,
            (prepared.train, prepared.test),
            config,
            settings=LinearEvalConfig(epochs=arguments.epochs),
            batch_size=arguments.batch_size,
            progress=True,
        )
        record = {
            "data": source,
            "protocol": "official",
            "top1": official.top1,
            "top5": official.top5,
            **images,
        }
        print(json.dumps({**record, **({"raw_pixels": pixels} if pixels else {})}))
        return 0
    result = _fast_probe(encoder, splits, config, arguments.batch_size)
    summary = {
        "data": source,
        "protocol": "fast",
        "top1": result.top1,
        "top5": result.top5,
        "weight_decay": result.weight_decay,
        **images,
    }
    extra = {"raw_pixels": pixels} if pixels else {}
    try:
        save_linear_classifier(result.classifier, out)
    except WriteError as error:
        # The accuracy is the result: print it before the error about the classifier file.
        print(json.dumps({**summary, "classifier": None, **extra}), flush=True)
        raise ValueError(
            f"{error}; the accuracy above is complete, only the classifier was not saved "
            "(pass --out FILE to save it elsewhere)"
        ) from error
    print(json.dumps({**summary, "classifier": str(out), **extra}))
    return 0


def _labels_used(prepared: LabelledSplits, source: str, out: Path) -> str | None:
    """With a label subset: its image list as ``labels_used.txt`` beside ``out``."""
    if prepared.subset is None:
        return None
    return str(write_labels_used(out.parent / "labels_used.txt", prepared.train, source))


def _fast_probe(
    encoder: nn.Module, splits: tuple[ImageCache, ImageCache], config: Config, batch_size: int
) -> LinearProbeResult:
    """Logistic regression on ``encoder``'s frozen features of the train split, scored on test."""
    train, test = (
        extract_features(
            encoder,
            eval_batches(cache.images, cache.labels, config.augment, batch_size, _device()),
            _device(),
        )
        for cache in splits
    )
    return linear_probe(train.features, train.labels, test.features, test.labels)


def finetune(arguments: argparse.Namespace) -> int:
    """``byol finetune`` (:mod:`byol.cli.finetune_run`)."""
    from byol.cli.finetune_run import run_finetune

    return run_finetune(arguments)


def downstream(arguments: argparse.Namespace) -> int:
    """``byol downstream``: build the model, check one forward pass, write it."""
    from byol.cli.downstream import spec_from_arguments
    from byol.downstream.dense_export import build_dense_model, check_dense_model, write_dense_model
    from byol.downstream.load import load_encoder

    spec = spec_from_arguments(arguments)
    loaded = load_encoder(arguments.checkpoint)
    model = build_dense_model(loaded, spec)
    shapes = check_dense_model(model, spec)
    weights, description = write_dense_model(model, spec, Path(arguments.out), loaded)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(
        f"{spec.architecture} over {loaded.backbone} ({loaded.origin}): {total:,} parameters, "
        f"{trainable:,} trainable; one blank {shapes_text(shapes)}"
    )
    print(weights)
    print(description)
    return 0


def shapes_text(shapes: dict[str, list[int]]) -> str:
    """``{"out": [1, 21, 64, 64]}`` -> ``image gave out (1, 21, 64, 64)``."""
    parts = ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes.items())
    return f"image gave {parts}"


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
    ).eval_cache()
    features = extract_features(
        encoder,
        eval_batches(cache.images, cache.labels, config.augment, arguments.batch_size, _device()),
        _device(),
        progress=True,
    )
    paths = out.with_suffix(".paths.txt")
    write_features(out, features.features.numpy(), paths, cache.paths)
    print(f"wrote {tuple(features.features.shape)} features to {out} and image paths to {paths}")
    skipped = write_skipped_list(out.with_suffix(".skipped.txt"), cache.skipped)
    if skipped is not None:
        print(f"left out {len(cache.skipped)} unreadable images, listed in {skipped}")
    return 0


def write_skipped_list(path: Path, skipped: list[tuple[str, str]]) -> Path | None:
    """One ``path<TAB>reason`` line per unreadable image (the run folder's
    ``skipped_images.txt`` format) in ``path``; no file, and an old one removed, when none."""
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    text = "".join(f"{file}\t{reason}\n" for file, reason in skipped)
    return write_bytes(path, text.encode("utf-8", errors="surrogateescape"))


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
