"""Config flags: value coercion, the preset a data argument implies, the CIFAR-stem notes and
the help text (all parsed in-process, without training)."""

from typing import Any

import pytest

from byol.cli.config_flags import ResolvedConfig, resolve_train_config
from byol.cli.main import build_parser, main


def resolve(*args: str) -> ResolvedConfig:
    return resolve_train_config(build_parser().parse_args(["train", *args]))


@pytest.mark.parametrize(
    ("flag", "text", "path", "expected"),
    [
        ("--optim.batch_size", "256", ("optim", "batch_size"), 256),
        ("--optim.base_learning_rate", "1e-3", ("optim", "base_learning_rate"), 0.001),
        ("--optim.warmup_epochs", "3", ("optim", "warmup_epochs"), 3.0),
        ("--model.cifar_stem", "true", ("model", "cifar_stem"), True),
        ("--data.cache_size", "null", ("data", "cache_size"), None),
        ("--data.cache_size", "48", ("data", "cache_size"), 48),
        ("--augment.mean", "[0.5, 0.5, 0.5]", ("augment", "mean"), (0.5, 0.5, 0.5)),
        ("--train.precision", "32-true", ("train", "precision"), "32-true"),
        ("--train.num_threads", "2", ("train", "num_threads"), 2),
        ("--train.devices", "2", ("train", "devices"), "2"),
    ],
)
def test_flag_values_are_coerced_to_the_field_type(
    flag: str, text: str, path: tuple[str, str], expected: Any
) -> None:
    config = resolve(flag, text).config
    value = getattr(getattr(config, path[0]), path[1])
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--optim.batch_size", "2.5", "must be an integer"),
        ("--optim.base_learning_rate", "fast", "must be a number"),
        ("--model.cifar_stem", "yes please", "must be true or false"),
        ("--train.precision", "fp8", "is not one of 'auto', '32-true'"),
        ("--augment.mean", "[0.5, 0.5]", "must be a list of 3 values"),
    ],
)
def test_bad_flag_values_name_the_field(flag: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve(flag, text)


@pytest.mark.parametrize(
    ("args", "preset", "backbone", "line"),
    [
        ((), "digits", "small_resnet18_w8", "preset: digits (no data argument"),
        (
            ("cifar10",),
            "cifar10",
            "resnet18",
            "preset: cifar10 (the recipe for the cifar10 data set; --preset NAME to change)",
        ),
        (("some/folder",), "images", None, "preset: images (the recipe for a folder of images"),
        (("cifar10", "--preset", "digits"), "digits", "small_resnet18_w8", "(from --preset)"),
    ],
)
def test_the_data_argument_picks_the_preset_unless_preset_is_given(
    args: tuple[str, ...], preset: str, backbone: str | None, line: str
) -> None:
    resolved = resolve(*args)
    assert resolved.notes[0].startswith(f"preset: {preset} ")
    assert line in resolved.notes[0]
    if backbone is not None:
        assert resolved.config.model.backbone == backbone
    if args:
        assert resolved.config.data.source == args[0]


def test_cifar_stem_note_for_another_torchvision_resnet() -> None:
    notes = resolve("cifar10", "--model.backbone", "resnet50").notes
    assert len(notes) == 2 and "gives resnet50 a 3x3 stride-1 stem" in notes[1]


def test_cifar_stem_note_for_a_small_resnet() -> None:
    notes = resolve("cifar10", "--model.backbone", "small_resnet18_w8").notes
    assert "changes nothing for small_resnet18_w8" in notes[1]


def test_cifar_stem_with_a_timm_model_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ValueError, match=r"add --model\.cifar_stem false"):
        resolve("cifar10", "--model.backbone", "timm/resnet18")
    explicit = resolve(
        "cifar10", "--model.backbone", "timm/resnet18", "--model.cifar_stem", "false"
    )
    assert len(explicit.notes) == 1


def test_no_cifar_stem_note_when_the_backbone_is_the_presets() -> None:
    assert len(resolve("cifar10").notes) == 1
    assert len(resolve("--model.backbone", "resnet50").notes) == 1  # digits: no CIFAR stem


def train_help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["train", *args, "--help"]) == 0
    return capsys.readouterr().out


def test_help_groups_flags_by_section_with_docs_choices_and_preset_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = train_help(capsys)
    for heading in ("model:", "augment:", "augment.view1:", "optim:", "target:", "train:"):
        assert f"\n{heading}\n" in text, heading
    assert "Starting EMA decay" in text  # target.tau_base's docstring
    assert "--optim.optimizer {lars,sgd,adamw}" in text
    assert "small_resnet18_w16" in text and "wide_resnet50_2" in text
    assert "Default: 0.97 [library: 0.996]" in " ".join(text.split())  # the digits preset
    assert "Defaults shown are the digits preset's" in " ".join(text.split())
    assert "(default: None)" not in text


@pytest.mark.parametrize("args", [("cifar10",), ("--preset", "cifar10")])
def test_help_shows_the_values_of_the_preset_that_would_run(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    text = " ".join(train_help(capsys, *args).split())
    assert "Defaults shown are the cifar10 preset's" in text
    assert "Default: resnet18 [library: resnet50]" in text
    assert "--model.cifar_stem {true,false} Replace" in text and "Default: true" in text
