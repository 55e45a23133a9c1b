"""The model card (``hf/README.md``): how to load the encoder, how it was trained, how it did.

Figures come from the run folder as the training engine leaves it: ``summary.json`` (data,
images, epochs, steps, wall time, collapse), ``metrics.csv`` (the last k-NN and online linear
classifier accuracies) and ``baselines.json`` (k-NN of raw pixels and of a random encoder).
Missing or unreadable files leave their part out; nothing is made up.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byol.export.readme import ExportFacts

# metrics.csv columns reported, with their names in the card.
_METRIC_NAMES = {
    "knn_top1": "k-NN top-1 (BYOL encoder)",
    "knn_top5": "k-NN top-5 (BYOL encoder)",
    "online_test_top1": "linear top-1 (online classifier on frozen features)",
    "online_test_top5": "linear top-5 (online classifier on frozen features)",
}
_BASELINE_NAMES = {
    "raw_pixels": "k-NN on raw pixels",
    "random_encoder": "k-NN on a random encoder (same architecture)",
}


@dataclass(frozen=True)
class RunFigures:
    """What a run folder says about the run; empty where it says nothing."""

    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # column -> last finite value
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> top1/top5


def read_run_figures(run_dir: Path) -> RunFigures:
    """The figures of ``run_dir`` (see the module docstring)."""
    return RunFigures(
        summary=_read_json_dict(run_dir / "summary.json"),
        metrics=_last_metrics(run_dir / "metrics.csv"),
        baselines={
            str(name): {k: float(v) for k, v in value.items() if _is_number(v)}
            for name, value in _read_json_dict(run_dir / "baselines.json").items()
            if isinstance(value, dict)
        },
    )


def _read_json_dict(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _last_metrics(path: Path) -> dict[str, float]:
    """The last finite value of each reported ``metrics.csv`` column."""
    last: dict[str, float] = {}
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.DictReader(handle):
                for column in _METRIC_NAMES:
                    try:
                        value = float(row.get(column) or "nan")
                    except ValueError:
                        continue
                    if math.isfinite(value):
                        last[column] = value
    except OSError:
        return {}
    return last


def model_card_text(
    facts: ExportFacts, architecture: str, config: Mapping[str, Any], figures: RunFigures
) -> str:
    """Markdown: front matter, loading with timm, training configuration, data, results."""
    size = facts.image_size
    sections = [
        "---\nlibrary_name: timm\ntags:\n- image-feature-extraction\n- byol\n- timm\n---\n",
        f"# {architecture} trained with BYOL\n",
        f"Encoder of a BYOL run (Grill et al., NeurIPS 2020): RGB images (B, 3, {size}, {size}) "
        f"-> pooled features (B, {facts.feature_dim}); no classifier, no projector.\n",
        "## Loading\n",
        "```python\nimport timm\n\n"
        'model = timm.create_model("local-dir:PATH/TO/hf", pretrained=True)  # or hf-hub:USER/REPO\n'
        "config = timm.data.resolve_data_config({}, model=model)\n"
        "transform = timm.data.create_transform(**config)  # resize, centre crop, normalise\n"
        "```\n\n"
        "With a classifier for fine-tuning: "
        f'`timm.create_model("{architecture}", pretrained=True, num_classes=10, '
        'pretrained_cfg_overlay=dict(file="PATH/TO/hf/model.safetensors"))`.\n',
        "## Preprocessing\n",
        f"Shorter side resized to round({size} * 256 / 224), centre crop {size}x{size} "
        f"(bicubic), RGB in [0, 1], then (x - mean) / std with mean = {list(facts.mean)}, "
        f"std = {list(facts.std)}.\n",
        _training_section(config),
        _data_section(config, figures.summary),
    ]
    results = _results_section(figures)
    if results:
        sections.append(results)
    return "\n".join(sections)


def _training_section(config: Mapping[str, Any]) -> str:
    model, optim = config.get("model", {}), config.get("optim", {})
    train, augment = config.get("train", {}), config.get("augment", {})
    rows = [
        ("backbone", model.get("backbone")),
        ("CIFAR stem", model.get("cifar_stem")),
        ("projector / predictor hidden", _pair(model, "projector_hidden_dim", "predictor_hidden")),
        ("projection dim", model.get("projection_dim")),
        ("image size", augment.get("image_size")),
        ("epochs", train.get("epochs")),
        ("batch size", optim.get("batch_size")),
        ("optimizer", optim.get("optimizer")),
        ("base learning rate", optim.get("base_learning_rate")),
        ("weight decay", optim.get("weight_decay")),
        ("warm-up epochs", optim.get("warmup_epochs")),
        ("target decay tau_base", optim.get("tau_base")),
        ("seed", train.get("seed")),
    ]
    lines = [f"| {name} | {value} |" for name, value in rows if value is not None]
    return "## Training\n\n| setting | value |\n|---|---|\n" + "\n".join(lines) + "\n"


def _pair(model: Mapping[str, Any], first: str, second_prefix: str) -> str | None:
    second = model.get(f"{second_prefix}_dim")
    if model.get(first) is None or second is None:
        return None
    return f"{model[first]} / {second}"


def _data_section(config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    data = config.get("data", {})
    text = f"## Data\n\nSource: `{summary.get('data', data.get('source'))}`"
    if _is_number(summary.get("images")):
        text += f", {int(summary['images'])} training images"
    if data.get("max_images") is not None:
        text += f" (a class-balanced subset of max {data['max_images']})"
    if _is_number(summary.get("steps")) and _is_number(summary.get("epochs")):
        text += f"; trained {int(summary['epochs'])} epochs ({int(summary['steps'])} steps)"
    if data.get("val_source"):
        text += f". Evaluated on `{data['val_source']}`"
    return text + ".\n"


def _results_section(figures: RunFigures) -> str:
    rows = [
        (name, figures.metrics[key])
        for key, name in _METRIC_NAMES.items()
        if key in figures.metrics
    ]
    for key, values in figures.baselines.items():
        for top in ("top1", "top5"):
            if top in values:
                label = _BASELINE_NAMES.get(key, key)
                rows.append((f"{label} {top.replace('top', 'top-')}", values[top]))
    if not rows:
        return ""
    table = "\n".join(f"| {name} | {100 * value:.2f}% |" for name, value in rows)
    note = ""
    if figures.summary.get("collapsed") is True:
        note = "\nThe projections collapsed during training (see the run's report).\n"
    return (
        "## Results\n\nMeasured during training on the run's evaluation split (last values).\n\n"
        "| figure | accuracy |\n|---|---|\n" + table + "\n" + note
    )
