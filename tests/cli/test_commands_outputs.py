"""Outputs of export, embed and eval: whole or not at all, and one-line errors that keep
what was computed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from byol.atomic import remove_stale_temporaries
from byol.cli.main import main
from byol.export import export_encoder
from tests.helpers import mount_tmpfs, noise_images, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "disk", "size=2m")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "ro", "ro,size=64k")


@pytest.fixture
def without_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a default install: ``import onnx`` fails."""
    for name in ("onnx", "onnxscript", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_default_export_without_onnx_succeeds_with_a_note(
    one_step_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], without_onnx: None
) -> None:
    out = tmp_path / "exported"
    assert main(["export", "--checkpoint", str(one_step_run), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "onnx package is not installed, so no encoder.onnx was written" in captured.err
    assert "--no-onnx" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "encoder.safetensors",
        "export.json",
    ]


def test_a_failed_onnx_step_leaves_the_earlier_export_untouched(
    one_step_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "exported"
    export_encoder(one_step_run, out, onnx=False)
    (out / "export.json").write_text('{"earlier": true}\n')  # tell the earlier export apart
    before = _snapshot(out)
    for name in ("onnx", "onnxscript", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ValueError, match=r"pass --no-onnx \(onnx=False in Python\)"):
        export_encoder(one_step_run, out, onnx=True)
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]  # no temporary left


def test_export_refuses_a_folder_holding_other_files(
    one_step_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me\n")
    args = ["export", "--checkpoint", str(one_step_run), "--out", str(tmp_path), "--no-onnx"]
    assert main(args) == 2
    assert "holds files that are not from an export (mine.txt)" in one_error_line(capsys)
    assert (tmp_path / "mine.txt").read_text() == "keep me\n"


def test_embed_names_the_npy_it_writes_and_refuses_batch_size_zero(
    one_step_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["embed", "digits", "--checkpoint", str(one_step_run), "--split", "test"]
    assert main([*base, "--out", str(tmp_path / "f"), "--batch-size", "0"]) == 2
    assert "--batch-size 0 must be at least 1" in one_error_line(capsys)
    assert main([*base, "--out", str(tmp_path / "features")]) == 0
    out = capsys.readouterr().out
    assert (
        f"to {tmp_path / 'features.npy'} and image paths to {tmp_path / 'features.paths.txt'}"
        in out
    )
    assert np.load(tmp_path / "features.npy").shape[0] == len(
        (tmp_path / "features.paths.txt").read_text().splitlines()
    )


def test_embed_on_a_full_disk_keeps_the_previous_features(
    one_step_run: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["embed", "digits", "--checkpoint", str(one_step_run), "--split", "test"]
    assert main([*args, "--out", str(small_disk / "features.npy")]) == 0
    before = _snapshot(small_disk)
    with (small_disk / "filler").open("wb") as handle:  # the disk fills up meanwhile
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    capsys.readouterr()
    assert main([*args, "--out", str(small_disk / "features.npy")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.replace("\r", "\n").strip().splitlines()[-1]  # after the progress bar
    assert "could not write" in line and "no space left" in line.lower()
    after = _snapshot(small_disk)
    assert {k: after[k] for k in before} == before
    assert sorted(after) == sorted([*before, "filler"])  # no temporary left


def test_eval_linear_prints_the_accuracy_before_failing_to_save_the_classifier(
    one_step_run: Path, read_only_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = read_only_disk / "classifier.safetensors"
    args = [
        "eval",
        "linear",
        "--checkpoint",
        str(one_step_run),
        "--data",
        "digits",
        "--out",
        str(out),
    ]
    assert main(args) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert 0 <= result["top1"] <= 1 and result["classifier"] is None
    (line,) = [x for x in captured.err.strip().splitlines() if not x.startswith("byol: warning")]
    assert f"could not write {out}" in line and "the accuracy above is complete" in line


def test_knn_on_a_folder_without_splits_is_refused(
    one_step_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        noise_images(tmp_path / "flat" / name, 8)
    args = ["eval", "knn", "--checkpoint", str(one_step_run), "--data", str(tmp_path / "flat")]
    assert main([*args, "--k", "1"]) == 2
    assert "need a folder with train/ and test/ sub-folders" in one_error_line(capsys)


def test_metrics_with_binary_junk_do_not_block_a_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_train(tmp_path, "--data.max_images", "64", "--train.max_steps", "2") == 0
    run_dir = tmp_path / "runs" / "run"
    (run_dir / "checkpoints" / "final.pt").unlink()  # as if killed before the end
    with (run_dir / "metrics.csv").open("ab") as handle:
        handle.write(b"\xff\xfe\x00junk\x9c\n\x80\x81\n")
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert f"{run_dir / 'metrics.csv'}: dropped 2 lines" in capsys.readouterr().err
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,")
    loss_rows = [row for row in csv.DictReader(rows) if row["loss"]]
    assert [row["step"] for row in loss_rows] == ["1", "2"]


_DIE_AT_RENAME = """
import os, sys
from pathlib import Path

from byol.export import export_encoder

real_replace, when = os.replace, sys.argv[3]


def replace(source, target):
    # A SIGKILL-like death (no cleanup runs) at the moment an export moves its old folder aside.
    if str(target).endswith("-old"):
        if when == "before":
            os._exit(9)
        real_replace(source, target)
        os._exit(9)
    real_replace(source, target)


os.replace = replace
export_encoder(Path(sys.argv[1]), sys.argv[2], onnx=False)
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_export_killed_while_swapping_folders_keeps_the_old_export(
    one_step_run: Path, tmp_path: Path, when: str
) -> None:
    out = tmp_path / "export"
    export_encoder(one_step_run / "checkpoints" / "final.pt", out, onnx=False)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    died = subprocess.run(
        [
            sys.executable,
            "-c",
            _DIE_AT_RENAME,
            str(one_step_run / "checkpoints" / "final.pt"),
            str(out),
            when,
        ],
        capture_output=True,
        timeout=600,
    )
    assert died.returncode == 9, died.stderr.decode()[-2000:]
    # The next run of anything that writes there tidies up: the old export is whole again.
    remove_stale_temporaries(tmp_path)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
