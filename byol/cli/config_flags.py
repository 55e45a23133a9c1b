"""Command-line flags for every configuration field: ``--section.field VALUE``.

The flags are generated from the dataclasses, so a new field needs no CLI code: ``--help``
groups them by section, with the field's docstring, its allowed values and the value of the
preset that will run. Values are read as YAML scalars and type-checked by
:func:`byol.config_io.coerce`; order of precedence: preset < ``--config`` file < flags. Nothing
here imports torch, so ``--help`` and bad flags answer at once.
"""

from __future__ import annotations

import argparse
import functools
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from byol.backbone_names import backbone_names_help, cifar_stem_effect
from byol.config import Config
from byol.config_io import (
    apply_dotted,
    apply_mapping,
    field_docs,
    iter_fields,
    load_yaml,
    parse_scalar,
)
from byol.presets import PRESETS, preset, preset_for_data

_DATA_REASONS = {
    None: "no data argument: the quick-start on the bundled digits",
    "digits": "the recipe for the digits data set",
    "cifar10": "the recipe for the cifar10 data set",
}


@dataclass(frozen=True)
class PresetChoice:
    """The preset a run starts from, and why."""

    name: str
    explicit: bool
    reason: str

    def line(self) -> str:
        """``preset: cifar10 (the recipe for the cifar10 data set; --preset NAME to change)``."""
        if self.explicit:
            return f"preset: {self.name} (from --preset)"
        return f"preset: {self.name} ({self.reason}; --preset NAME to change)"


def choose_preset(explicit: str | None, data: str | None) -> PresetChoice:
    """``--preset`` when given, else the one the data argument implies (:func:`preset_for_data`)."""
    if explicit is not None:
        return PresetChoice(explicit, True, "from --preset")
    reason = _DATA_REASONS.get(data, "the recipe for a folder of images")
    return PresetChoice(preset_for_data(data), False, reason)


@dataclass(frozen=True)
class ResolvedConfig:
    """The configuration ``byol train`` runs, and the lines that say where it came from."""

    config: Config
    notes: tuple[str, ...]


def add_config_arguments(parser: argparse.ArgumentParser, shown: PresetChoice) -> None:
    """``--preset``, ``--config`` and one flag per field of :class:`Config`, in one argument
    group per section; the help shows the values of the preset ``shown``."""
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="starting configuration (default: the data argument's: digits -> digits, "
        "cifar10 -> cifar10, a folder -> images, none -> digits)",
    )
    parser.add_argument(
        "--config", metavar="FILE.yaml", help="YAML file of overrides, applied after the preset"
    )
    values = preset(shown.name)
    library = Config()
    for section, fields in _sections(library):
        group = parser.add_argument_group(section, _section_doc(library, section))
        for dotted, annotation in fields:
            group.add_argument(
                f"--{dotted}",
                dest=f"cfg:{dotted}",
                metavar=_metavar(annotation),
                default=argparse.SUPPRESS,
                help=_flag_help(dotted, library, values).replace("%", "%%"),
            )


def defaults_note(shown: PresetChoice) -> str:
    """Where the defaults in the help come from."""
    how = "from --preset" if shown.explicit else shown.reason
    return (
        f"Defaults shown are the {shown.name} preset's ({how}), with the library default "
        "(the paper's 1000-epoch ImageNet recipe) in brackets where it differs. They depend on "
        "the preset: `byol train cifar10 --help` or `byol train --preset NAME --help` shows "
        "another preset's values. Precedence: preset < --config FILE.yaml < --section.field "
        "flags. Values are YAML scalars: true/false, null, 1e-3, [a, b, c]."
    )


def _sections(config: Config) -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    """(section, [(dotted field, annotation), ...]) in the dataclasses' order."""
    sections: dict[str, list[tuple[str, Any]]] = {}
    for dotted, annotation, _ in iter_fields(config):
        sections.setdefault(dotted.rsplit(".", 1)[0], []).append((dotted, annotation))
    yield from sections.items()


def _owner(config: Config, dotted: str) -> tuple[Any, str]:
    """The dataclass instance holding ``dotted``'s last part, and that part."""
    *path, name = dotted.split(".")
    return functools.reduce(getattr, path, config), name


def _section_doc(config: Config, section: str) -> str:
    owner, name = _owner(config, section)
    return field_docs(type(owner)).get(name, "")


def _flag_help(dotted: str, library: Config, values: Config) -> str:
    owner, name = _owner(library, dotted)
    doc = field_docs(type(owner)).get(name, "")
    if dotted == "model.backbone":
        doc = f"{doc} Built in: {backbone_names_help()}."
    shown = getattr(_owner(values, dotted)[0], name)
    default = getattr(owner, name)
    text = f"{doc.replace('``', '')} Default: {format_value(shown)}"
    if shown != default:
        text += f" [library: {format_value(default)}]"
    return text


def _metavar(annotation: Any) -> str:
    """``{a,b}`` for Literal and bool fields, else the type's name (``INT``, ``FLOAT|NULL``)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "{" + ",".join(str(choice) for choice in get_args(annotation)) + "}"
    if annotation is bool:
        return "{true,false}"
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return "|".join(_metavar(a) for a in options) + "|NULL"
    if origin is tuple:
        return f"[{','.join(_metavar(a) for a in get_args(annotation))}]"
    return getattr(annotation, "__name__", str(annotation)).upper()


def format_value(value: Any) -> str:
    """A value as one would type it on the command line (YAML): true, null, [0.5, 0.5]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def resolve_train_config(arguments: argparse.Namespace) -> ResolvedConfig:
    """Preset (given or implied by the data argument), then the YAML file, then the flags, then
    the data argument; checked here, before torch is imported, so mistakes fail at once. The
    preset's recipe follows the run length the file or the flags give (``train.epochs``)."""
    choice = choose_preset(arguments.preset, arguments.data)
    overrides = flag_overrides(arguments)
    file_values = load_yaml(arguments.config) if arguments.config else {}
    config = preset(choice.name, _run_length(file_values, overrides))
    if arguments.config:
        apply_mapping(config, file_values)
    apply_dotted(config, overrides)
    if arguments.data:
        data = {"data.source": arguments.data}
        if config.data.val_source is not None:  # the monitor follows the data argument
            data["data.val_source"] = arguments.data
        apply_dotted(config, data)
    notes = [choice.line()]
    stem = cifar_stem_note(config, choice)
    if stem is not None:
        notes.append(stem)
    return ResolvedConfig(config, tuple(notes))


def cifar_stem_note(config: Config, choice: PresetChoice) -> str | None:
    """What the preset's ``model.cifar_stem=true`` does to a backbone chosen instead of the
    preset's (None when it changes nothing worth saying).

    Raises:
        ValueError: the backbone is a timm model, which has no CIFAR stem.
    """
    start = preset(choice.name).model
    model = config.model
    if not (model.cifar_stem and start.cifar_stem) or model.backbone == start.backbone:
        return None
    where = f"model.cifar_stem=true (from the {choice.name} preset)"
    effect = cifar_stem_effect(model.backbone)
    if effect == "refused":
        raise ValueError(
            f"{where} applies to torchvision ResNets only, not to {model.backbone!r}; "
            "add --model.cifar_stem false"
        )
    if effect == "built_in":
        return (
            f"note: {where} changes nothing for {model.backbone}, whose stem is always a "
            "3x3 stride-1 convolution"
        )
    return (
        f"note: {where} gives {model.backbone} a 3x3 stride-1 stem without max-pool, for "
        "32 px images; --model.cifar_stem false keeps its ImageNet stem"
    )


def _run_length(file_values: dict[str, Any], overrides: dict[str, Any]) -> int | None:
    """``train.epochs`` as the flags (first) or the YAML file give it, when it is a whole number
    (a wrong type is reported later, by the checked assignment)."""
    train_section = file_values.get("train")
    epochs = overrides.get(
        "train.epochs", train_section.get("epochs") if isinstance(train_section, dict) else None
    )
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def flag_overrides(arguments: argparse.Namespace) -> dict[str, Any]:
    """The ``--section.field VALUE`` flags given, as ``{"section.field": value}``."""
    return {
        key.removeprefix("cfg:"): parse_scalar(value)
        for key, value in vars(arguments).items()
        if key.startswith("cfg:")
    }
