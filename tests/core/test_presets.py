"""Every preset builds, and a data argument brings its own preset."""

import pytest

from byol.augment import validate_augment_config
from byol.model import build_model
from byol.presets import PRESETS, preset, preset_for_data
from byol.train.engine import check_train_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_valid_config_and_model(name: str) -> None:
    config = preset(name)
    validate_augment_config(config.augment)
    check_train_config(config)
    model = build_model(config.model)
    assert model.online.projector is not None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, "digits"),
        ("digits", "digits"),
        ("cifar10", "cifar10"),
        ("path/to/images", "images"),
        ("/data/imagenet", "images"),
    ],
)
def test_preset_for_data(source: str | None, expected: str) -> None:
    assert preset_for_data(source) == expected
    assert expected in PRESETS
