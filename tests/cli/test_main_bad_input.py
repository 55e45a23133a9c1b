"""Bad input at the command line: a one-line error (exit 2) or a counted skip, never a traceback.

Covered elsewhere and not repeated here: a missing folder, a folder without images, an unknown
config key and a wrong type given as a flag (tests/cli/test_main.py); decoding of every image
mode and the data-level skipping of unreadable files (tests/data/test_folder_modes.py,
tests/data/test_folder_unreadable.py); unreadable checkpoint files (tests/checkpoint). This file
drives the same inputs through ``byol train`` / ``eval`` / ``export``.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from byol.checkpoint import read_checkpoint, save_checkpoint
from byol.cli.main import main
from byol.config_io import apply_dotted, to_dict
from byol.model import build_model
from byol.optim import build_optimizer
from byol.presets import preset
from tests.helpers import noise_images, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


def _truncated_jpeg(path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


UNREADABLE = {
    "truncated jpeg": ("broken.jpg", _truncated_jpeg),
    "zero bytes": ("empty.png", lambda path: path.write_bytes(b"")),
    "text named .jpg": ("notes.jpg", lambda path: path.write_text("not an image\n")),
}


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_unreadable_file_is_skipped_counted_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 10)
    name, write = UNREADABLE[kind]
    write(folder / name)
    assert run_train(tmp_path, str(folder)) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    listing = tmp_path / "runs" / "run" / "skipped_images.txt"
    assert f"skipped 1 unreadable images (list in {listing})" in captured.out
    assert "on 10 images" in captured.out  # the count reported is the count trained on
    (line,) = listing.read_text().splitlines()
    assert line.startswith(str((folder / name).resolve()) + "\t")


@pytest.mark.parametrize(
    ("size", "extension"),
    [((6, 5), ".png"), ((4000, 3000), ".jpg"), ((3000, 4000), ".png")],
    ids=["smaller than the crop", "4000x3000 jpeg", "3000x4000 png"],
)
def test_tiny_and_huge_images_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: tuple[int, int], extension: str
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 9)
    # A smooth gradient: real-photo sized without a slow, huge noise file.
    ramp = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.broadcast_to(ramp[None, :, None], (size[1], size[0], 3)).copy()
    Image.fromarray(pixels).save(folder / f"odd{extension}")
    assert run_train(tmp_path, str(folder)) == 0
    out = capsys.readouterr().out
    assert "on 10 images" in out and "unreadable" not in out


def _mode_image(mode: str, path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    if mode == "CMYK":
        rgb.convert("CMYK").save(path.with_suffix(".jpg"))
    elif mode == "I;16":
        grey = rng.integers(0, 65536, (20, 24), dtype=np.uint16)
        Image.fromarray(grey).save(path.with_suffix(".png"))  # 16-bit grey PNG
    elif mode == "P":
        rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path.with_suffix(".png"))
    else:  # RGBA with varying transparency
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)))
        rgba.save(path.with_suffix(".png"))


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "RGBA"])
def test_every_image_mode_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(8):
        _mode_image(mode, folder / f"image-{index}")
    with Image.open(next(folder.iterdir())) as image:
        assert image.mode == mode  # the files really are in that mode
    assert run_train(tmp_path, str(folder)) == 0
    assert "on 8 images" in capsys.readouterr().out
    state = read_checkpoint(tmp_path / "runs" / "run")
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_batch_larger_than_the_usable_images_names_both_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 10)
    (folder / "empty.jpg").write_bytes(b"")
    assert run_train(tmp_path, str(folder), "--optim.batch_size", "32") == 2
    line = one_error_line(capsys)
    assert "optim.batch_size=32 is larger than the 10 training images" in line
    assert "1 unreadable" in line


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("optim:\n  batch_size: big\n", "optim.batch_size='big' must be an integer"),
        ("optim: 3\n", "optim is a section"),
        ("train:\n  nonfinite: ignore\n", "train.nonfinite='ignore' is not one of"),
        ("- just\n- a list\n", "must hold a mapping"),
    ],
)
def test_bad_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    assert run_train(tmp_path, "--config", str(config)) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--train.checkpoint_every_steps", "0"), ("--train.log_every_steps", "-1")],
)
def test_counts_below_one_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    assert run_train(tmp_path, flag, value) == 2
    assert f"{flag.removeprefix('--')}={value} must be at least 1" in one_error_line(capsys)


def _checkpoint(tmp_path: Path, **changes: object) -> Path:
    """A resumable checkpoint of a tiny run, with ``changes`` ("model.backbone": ...) applied to
    its saved config only, or ``format_version`` overridden."""
    config = preset("digits")
    apply_dotted(
        config,
        {"model.backbone": "small_resnet18_w8", "data.max_images": 64, "optim.batch_size": 8},
    )
    model = build_model(config.model)
    optimizer = build_optimizer(model.online, config.optim)
    saved = to_dict(config)
    version = changes.pop("format_version", None)
    apply_dotted_dict(saved, changes)
    state = {
        "config": saved,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
    }
    path = save_checkpoint(state, tmp_path / "run" / "checkpoints" / "last.pt")
    if version is not None:
        torch.save({**torch.load(path, weights_only=True), "format_version": version}, path)
    return path


def apply_dotted_dict(mapping: dict[str, object], changes: dict[str, object]) -> None:
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        target = mapping
        for section in sections:
            target = target[section]  # type: ignore[assignment]
        target[key] = value


COMMANDS = {
    "train --resume": lambda file, out: ["train", "--resume", str(file)],
    "eval knn": lambda file, out: ["eval", "knn", "--checkpoint", str(file)],
    "export": lambda file, out: ["export", "--checkpoint", str(file), "--out", str(out)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model.backbone": "small_resnet18_w16"},
            "do not fit model.backbone='small_resnet18_w16'",
        ),
        ({"format_version": 99}, "format_version=99, newer than the 1 this byol reads"),
    ],
    ids=["other backbone", "newer format"],
)
def test_unusable_checkpoint_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    change: dict[str, object],
    message: str,
) -> None:
    file = _checkpoint(tmp_path, **change)
    assert main(COMMANDS[command](file, tmp_path / "exported")) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "exported").exists()


def test_resume_refuses_a_config_file_and_folders_without_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "new.yaml").write_text("optim:\n  batch_size: 16\n")
    assert main(["train", "--resume", str(tmp_path), "--config", str(tmp_path / "new.yaml")]) == 2
    assert "--resume continues a run with its saved configuration" in one_error_line(capsys)
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "holds no run to resume (neither checkpoints/last.pt nor config.yaml)" in (
        one_error_line(capsys)
    )
    # last.pt deleted by hand, older checkpoints kept: not started again over them.
    (tmp_path / "config.yaml").write_text("train:\n  epochs: 2\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "epoch-0001.pt").write_bytes(b"")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "has no checkpoints/last.pt but other checkpoints (epoch-0001.pt)" in (
        one_error_line(capsys)
    )


def test_disk_full_while_saving_stops_and_keeps_the_previous_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, calls = torch.save, itertools.count(1)

    def save_until_the_disk_fills(*arguments: Any, **keywords: Any) -> None:
        if next(calls) >= 2:  # the second checkpoint write finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(*arguments, **keywords)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    steps = ["digits", "--data.max_images", "64", "--train.max_steps", "4"]
    assert run_train(tmp_path, *steps, "--train.checkpoint_every_steps", "1") == 1
    run_dir = tmp_path / "runs" / "run"
    last = run_dir / "checkpoints" / "last.pt"
    line = one_error_line(capsys)
    assert line.startswith(f"byol: stopped: could not write checkpoint {last}: ")
    assert os.strerror(errno.ENOSPC) in line and f"byol train --resume {run_dir}" in line
    assert read_checkpoint(last)["step"] == 1  # the previous checkpoint, intact
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # no temporary left
    monkeypatch.undo()  # space freed: the run continues
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert read_checkpoint(run_dir)["step"] == 4
