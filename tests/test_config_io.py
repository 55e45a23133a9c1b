"""Field documentation read from the dataclasses' attribute docstrings."""

import dataclasses

from byol.config import Config, ViewConfig
from byol.config_io import field_docs, iter_fields


def _sections(config: object) -> list[object]:
    found = [config]
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            found += _sections(value)
    return found


def test_every_config_field_has_a_one_paragraph_doc() -> None:
    for section in _sections(Config()):
        docs = field_docs(type(section))
        for field in dataclasses.fields(section):  # type: ignore[arg-type]
            assert docs.get(field.name), f"{type(section).__name__}.{field.name} has no doc"
            assert "\n" not in docs[field.name]
    assert len(list(iter_fields(Config()))) > 80


def test_field_docs_cite_sources() -> None:
    docs = field_docs(ViewConfig)
    assert docs["solarize_prob"].startswith("Probability of solarization")
    assert "[paper] Table 6" in docs["solarize_prob"]
