"""Command-line flags for every configuration field: ``--section.field VALUE``.

The flags are generated from the dataclasses, so ``--help`` lists every option with its
default and a new field needs no CLI code. Values are read as YAML scalars and type-checked by
:func:`byol.config_io.coerce`; order of precedence: preset < ``--config`` file < flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from byol.config import Config
from byol.config_io import apply_dotted, apply_mapping, iter_fields, load_yaml, parse_scalar
from byol.presets import PRESETS, preset


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None) -> None:
    """``--preset``, ``--config`` and one flag per field of :class:`Config`."""
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=default_preset,
        help="starting configuration (default: %(default)s)",
    )
    parser.add_argument(
        "--config", metavar="FILE.yaml", help="YAML file of overrides, applied after the preset"
    )
    group = parser.add_argument_group(
        "configuration",
        "every field of the run's configuration (defaults: the paper's, "
        "before the preset is applied)",
    )
    for dotted, annotation, value in iter_fields(Config()):
        name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        group.add_argument(
            f"--{dotted}",
            dest=f"cfg:{dotted}",
            metavar=name.upper()[:12],
            default=argparse.SUPPRESS,
            help=f"default: {value!r}",
        )


def config_from_arguments(arguments: argparse.Namespace) -> Config:
    """Preset, then the YAML file, then the flags; the preset's recipe follows the run length
    those give (``train.epochs``)."""
    overrides = flag_overrides(arguments)
    file_values = load_yaml(arguments.config) if arguments.config else {}
    train_section = file_values.get("train") if isinstance(file_values, dict) else None
    epochs = overrides.get(
        "train.epochs", train_section.get("epochs") if isinstance(train_section, dict) else None
    )
    run_length = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
    config = preset(arguments.preset, run_length) if arguments.preset else Config()
    if arguments.config:
        apply_mapping(config, file_values)
    return apply_dotted(config, overrides)


def flag_overrides(arguments: argparse.Namespace) -> dict[str, Any]:
    """The ``--section.field VALUE`` flags given, as ``{"section.field": value}``."""
    return {
        key.removeprefix("cfg:"): parse_scalar(value)
        for key, value in vars(arguments).items()
        if key.startswith("cfg:")
    }
