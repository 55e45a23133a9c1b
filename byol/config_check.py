"""Value checks of a whole :class:`~byol.config.Config`, done before a run writes anything.

:mod:`byol.config_io` checks types; this module checks that the values can work: every number
is finite (no ``.nan`` or ``.inf``), counts are at least 1, rates and probabilities lie in
their ranges. A bad value is a :class:`~byol.config_io.ConfigError` naming the key, the value
and the range, raised before any run folder exists.
"""

from __future__ import annotations

import math
from typing import Any

from byol.config import Config, ViewConfig
from byol.config_io import ConfigError, iter_fields, short_repr

# (key, lowest, highest, lowest allowed?, highest allowed?); None: no bound on that side.
_RANGES: tuple[tuple[str, float | None, float | None, bool, bool], ...] = (
    ("augment.image_size", 1, None, True, True),
    ("model.projector_hidden_dim", 1, None, True, True),
    ("model.projection_dim", 1, None, True, True),
    ("model.predictor_hidden_dim", 1, None, True, True),
    ("model.feature_dim", 1, None, True, True),
    ("model.batchnorm_momentum", 0, 1, True, True),
    ("model.batchnorm_eps", 0, None, False, True),
    ("optim.base_learning_rate", 0, None, False, True),
    ("optim.weight_decay", 0, None, True, True),
    ("optim.momentum", 0, 1, True, False),
    ("optim.lars_eta", 0, None, False, True),
    ("optim.warmup_epochs", 0, None, True, True),
    ("optim.batch_size", 1, None, True, True),
    ("optim.gradient_accumulation_steps", 1, None, True, True),
    ("target.tau_base", 0, 1, True, True),
    ("data.cache_size", 1, None, True, True),
    ("data.num_workers", 0, None, True, True),
    ("data.max_images", 1, None, True, True),
    ("monitor.knn_every_epochs", 0, None, True, True),
    ("monitor.knn_k", 1, None, True, True),
    ("monitor.final_linear_probe_labels_per_class", 1, None, True, True),
    ("monitor.knn_temperature", 0, None, False, True),
    ("monitor.collapse_std_threshold", 0, None, True, True),
    ("train.epochs", 1, None, True, True),
    ("train.num_nodes", 1, None, True, True),
    ("train.log_every_steps", 1, None, True, True),
    ("train.checkpoint_every_epochs", 1, None, True, True),
    ("train.checkpoint_every_steps", 1, None, True, True),
    ("train.max_steps", 1, None, True, True),
)
_PROBABILITIES = (
    "flip_prob",
    "color_jitter_prob",
    "grayscale_prob",
    "blur_prob",
    "solarize_prob",
    "crop_scale_max",
    "blur_kernel_fraction",
)


def validate_config(config: Config) -> Config:
    """Raise :class:`ConfigError` for the first value in ``config`` that cannot work."""
    values: dict[str, Any] = {}
    for name, _, value in iter_fields(config):
        values[name] = value
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{name}={short_repr(value)} must be a finite number")
    for name, low, high, low_ok, high_ok in _RANGES:
        _check_range(name, values[name], low, high, low_ok, high_ok)
    for view_name in ("view1", "view2"):
        _check_view(f"augment.{view_name}", getattr(config.augment, view_name))
    for name in ("augment.std",):
        if any(v <= 0 for v in values[name]):
            raise ConfigError(f"{name}={short_repr(values[name])} must be positive numbers")
    return config


def _check_range(
    name: str, value: Any, low: float | None, high: float | None, low_ok: bool, high_ok: bool
) -> None:
    if value is None:
        return
    too_low = low is not None and (value < low if low_ok else value <= low)
    too_high = high is not None and (value > high if high_ok else value >= high)
    if too_low or too_high:
        raise ConfigError(f"{name}={short_repr(value)} {_range_text(low, high, low_ok, high_ok)}")


def _range_text(low: float | None, high: float | None, low_ok: bool, high_ok: bool) -> str:
    if high is None:
        return f"must be at least {low}" if low_ok else f"must be greater than {low}"
    if low is None:  # pragma: no cover - every range has a lower bound
        return f"must be at most {high}" if high_ok else f"must be less than {high}"
    left, right = "[" if low_ok else "(", "]" if high_ok else ")"
    return f"must be in {left}{low}, {high}{right}"


def _check_view(prefix: str, view: ViewConfig) -> None:
    for field in _PROBABILITIES:
        _check_range(f"{prefix}.{field}", getattr(view, field), 0, 1, True, True)
    for field in ("brightness", "contrast", "saturation", "blur_sigma_min"):
        _check_range(f"{prefix}.{field}", getattr(view, field), 0, None, True, True)
    _check_range(f"{prefix}.hue", view.hue, 0, 0.5, True, True)
    _check_range(f"{prefix}.solarize_threshold", view.solarize_threshold, 0, 1, True, True)
    _check_range(f"{prefix}.crop_scale_min", view.crop_scale_min, 0, None, False, True)
    _check_range(f"{prefix}.crop_ratio_min", view.crop_ratio_min, 0, None, False, True)
    pairs = (
        ("crop_scale_min", "crop_scale_max"),
        ("crop_ratio_min", "crop_ratio_max"),
        ("blur_sigma_min", "blur_sigma_max"),
    )
    for low, high in pairs:
        if getattr(view, low) > getattr(view, high):
            raise ConfigError(
                f"{prefix}.{low}={getattr(view, low)} is larger than {prefix}.{high}="
                f"{getattr(view, high)}; swap them"
            )
