"""Read, override, validate and save :class:`byol.config.Config`.

Overrides come as nested mappings (from YAML) or dotted keys (``optim.batch_size=256``).
Unknown keys and values of the wrong type are errors that name the valid choices: a typo must
never be silently ignored.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import itertools
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from byol.atomic import write_text
from byol.config import Config

T = TypeVar("T")
# A decimal number such as 3, -0.5, 1e-3 or 2.5E+6 (not nan, inf or hex).
_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# A config is a few kilobytes; anything much larger is not one.
MAX_CONFIG_BYTES = 1 << 20
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 4, 4, 2


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts/lists (tuples become lists), for YAML."""
    raw = dataclasses.asdict(config)
    return typing.cast(dict[str, Any], _plain(raw))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved configuration as YAML (atomically, see :mod:`byol.atomic`: a crash
    leaves the old file or the new one, never half of one)."""
    write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, cheaply for huge nested values."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks the cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _RefusingLoader(yaml.SafeLoader):
    """The safe loader without anchors and aliases: ``&a`` / ``*a`` can multiply a few hundred
    bytes into gigabytes (a "billion laughs" file), and a config has no use for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            mark = event.start_mark
            raise ConfigError(
                f"YAML anchor or alias {anchor!r} at line {mark.line + 1}; byol configs may not "
                "use anchors (&) or aliases (*): write the values out"
            )
        return super().compose_node(parent, index)


def safe_yaml(text: str) -> Any:
    """Parse YAML text with the safe loader, refusing anchors and aliases."""
    loader = _RefusingLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader (nothing in it is evaluated).

    Files over :data:`MAX_CONFIG_BYTES` and YAML anchors or aliases are refused.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist or is not a regular file")
    size = file.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {file} has {size} bytes, more than the {MAX_CONFIG_BYTES} a config "
            "may have; pass a config file, not a data file"
        )
    try:
        data = safe_yaml(file.read_text(encoding="utf-8"))
    except ConfigError as error:
        raise ConfigError(f"config file {file}: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {file} is not UTF-8 text ({error.reason})") from error
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(
            f"config file {file} is not valid YAML: {short_text(detail, 300)}"
        ) from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {file} must hold a mapping of sections, not {type(data).__name__}"
        )
    return data


def apply_mapping(config: T, overrides: Mapping[str, Any], prefix: str = "") -> T:
    """Apply nested overrides in place and return ``config``."""
    hints = get_type_hints(type(config))
    names = [field.name for field in dataclasses.fields(config)]  # type: ignore[arg-type]
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(_unknown_key(dotted, key, names, prefix))
        current = getattr(config, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{dotted} is a section; give it a mapping of its keys {_keys(current)}"
                )
            apply_mapping(current, value, f"{dotted}.")
        else:
            setattr(config, key, coerce(value, hints[key], dotted))
    return config


def apply_dotted(config: T, assignments: Mapping[str, Any]) -> T:
    """Apply ``{"optim.batch_size": 256, ...}`` overrides in place and return ``config``."""
    for dotted, value in assignments.items():
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        apply_mapping(config, nested)
    return config


def parse_scalar(text: str) -> Any:
    """A command-line string as YAML scalar (``1e-3`` -> float, ``true`` -> bool, ``null``)."""
    try:
        return safe_yaml(text)
    except (yaml.YAMLError, ConfigError):
        return text


def coerce(value: Any, annotation: Any, name: str) -> Any:
    """Check ``value`` against a field's annotation; convert int -> float and lists -> tuples."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, name)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{name} cannot be {short_repr(value)}")
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise ConfigError(
                f"{name}={short_repr(value)} is not one of {', '.join(map(repr, choices))}"
            )
        return value
    if origin is tuple:
        element_types = get_args(annotation)
        if not isinstance(value, (list, tuple)) or len(value) != len(element_types):
            raise ConfigError(
                f"{name}={short_repr(value)} must be a list of {len(element_types)} values"
            )
        return tuple(coerce(v, t, name) for v, t in zip(value, element_types, strict=True))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={short_repr(value)} must be true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}={short_repr(value)} must be an integer")
        return value
    if annotation is float:
        # YAML 1.1 reads 1e-3 (no dot) as a string; take it as the number it means.
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={short_repr(value)} must be a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{name}={short_repr(value)} must be a string")
        return str(value)
    raise ConfigError(f"{name}: unsupported field type {annotation!r}")


def iter_fields(config: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any, Any]]:
    """Every leaf field as (dotted name, annotation, current value)."""
    hints = get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        dotted = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            yield from iter_fields(value, f"{dotted}.")
        else:
            yield dotted, hints[field.name], value


_FIELD_DOCS: dict[type, dict[str, str]] = {}


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (PEP 257 attribute docstrings),
    whitespace collapsed to single spaces: ``{"batch_size": "The global batch, ..."}``."""
    if cls not in _FIELD_DOCS:
        _FIELD_DOCS[cls] = _read_field_docs(cls)
    return _FIELD_DOCS[cls]


def _read_field_docs(cls: type) -> dict[str, str]:
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    docs = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _keys(section: Any) -> str:
    return ", ".join(field.name for field in dataclasses.fields(section))


def _unknown_key(dotted: str, key: str, names: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    where = f"section {prefix.rstrip('.')}" if prefix else "the top level"
    return (
        f"unknown config key {short_repr(dotted)}{hint} Valid keys in {where}: {', '.join(names)}"
    )
