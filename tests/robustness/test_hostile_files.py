"""Hostile or odd files in the data and configs: names that are not UTF-8, FIFOs, undecodable
and decompression-bomb images in shards, edited shard indexes, YAML alias bombs."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byol.atomic import temporary_prefix
from byol.cli.main import main
from byol.data.folder import SkippedImagesWarning, scan_folder
from byol.data.shards import read_shard_set

from .helpers import noise_images, one_error_line, run_train


def _png(size: tuple[int, int] = (20, 20), seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 50_000) -> bytes:
    """A valid PNG header claiming side x side RGB pixels: a few dozen bytes on disk."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def test_a_file_name_that_is_not_utf8_trains_on_the_cached_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 12)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # Latin-1 bytes, not UTF-8
    with open(odd, "wb") as handle:
        handle.write(_png())
    with open(os.path.join(os.fsencode(folder), b"bad-\xff.png"), "wb") as handle:
        handle.write(b"not an image")  # listed in skipped_images.txt under its own bytes
    assert run_train(tmp_path, str(folder)) == 0
    out = capsys.readouterr().out
    assert "on 13 images" in out
    listing = (tmp_path / "runs" / "run" / "skipped_images.txt").read_bytes()
    assert b"bad-\xff.png\t" in listing


def test_a_fifo_named_like_an_image_is_skipped_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 12)
    os.mkfifo(folder / "pipe.png")  # opening it for reading would block forever
    with pytest.warns(SkippedImagesWarning, match="special files"):
        scan = scan_folder(folder)
    assert len(scan) == 12 and not any(p.endswith("pipe.png") for p in scan.paths)
    started = time.monotonic()
    assert run_train(tmp_path, str(folder)) == 0
    assert time.monotonic() - started < 60
    assert "on 12 images" in capsys.readouterr().out


def test_shard_drops_what_training_skips_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    noise_images(folder, 16)
    (folder / "notes.png").write_text("not an image\n")
    (folder / "bomb.png").write_bytes(bomb_png())
    out = tmp_path / "shards"
    assert main(["shard", str(folder), "--out", str(out), "--images-per-shard", "8"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 16 images in 2 shards" in printed
    assert "skipped 2 unreadable images, as training would" in printed
    assert read_shard_set(out).num_images == 16
    assert run_train(tmp_path, str(out)) == 0


def _hand_made_shards(root: Path, members: list[bytes]) -> None:
    """One tar of ``members`` (image bytes, keys 0..n-1) and its correct index."""
    root.mkdir()
    with tarfile.open(root / "shard-000000.tar", "w") as tar:
        for index, data in enumerate(members):
            info = tarfile.TarInfo(f"{index:06d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    index = {"format": "byol-shards/1", "num_images": len(members), "classes": []}
    index["shards"] = [{"file": "shard-000000.tar", "count": len(members)}]
    (root / "shards.json").write_text(json.dumps(index))


def test_undecodable_and_bomb_members_of_a_shard_are_skipped_while_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = [_png(seed=i) for i in range(14)] + [b"garbage bytes", bomb_png()]
    _hand_made_shards(tmp_path / "shards", members)
    status = run_train(tmp_path, str(tmp_path / "shards"), "--train.max_steps", "2")
    assert status == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "image 14 in the shards of" in err and "using the next image instead" in err
    assert "image 15 in the shards of" in err and "DecompressionBombError" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(count=s["count"] * 10), "says shard-000000.tar holds 80 images but"),
        (lambda s: s.update(count=-8), "counts are non-negative integers"),
        (lambda s: s.update(file="/etc/passwd"), "must be plain names inside the shard folder"),
        (lambda s: s.update(file="../shards/shard-000000.tar"), "must be plain names"),
    ],
    ids=["count x10", "negative count", "absolute path", "parent path"],
)
def test_an_edited_shard_index_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, message: str
) -> None:
    _hand_made_shards(tmp_path / "shards", [_png(seed=i) for i in range(8)])
    index_file = tmp_path / "shards" / "shards.json"
    index = json.loads(index_file.read_text())
    edit(index["shards"][0])  # type: ignore[operator]
    index_file.write_text(json.dumps(index))
    assert run_train(tmp_path, str(tmp_path / "shards")) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
train: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    started = time.monotonic()
    assert main(["train", "--config", str(tmp_path / "bomb.yaml")]) == 2
    assert time.monotonic() - started < 5
    line = one_error_line(capsys)
    assert "may not use anchors (&) or aliases (*)" in line and len(line) < 400


def test_an_oversized_config_and_huge_values_give_short_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "big.yaml").write_text("train:\n  run_name: " + "x" * (2 << 20) + "\n")
    assert main(["train", "--config", str(tmp_path / "big.yaml")]) == 2
    assert "more than the 1048576 a config may have" in one_error_line(capsys)
    huge = "[" + ",".join(["1"] * 100_000) + "]"
    assert main(["train", "--optim.batch_size", huge]) == 2
    line = one_error_line(capsys)
    assert "must be an integer" in line and len(line) < 200


def test_temporaries_of_killed_processes_are_removed_by_the_next_run(tmp_path: Path) -> None:
    noise_images(tmp_path / "images", 12)
    base = tmp_path / "cache" / "uint8"
    base.mkdir(parents=True)
    # A cache build killed with SIGKILL: its temporary folder, named after its (dead) PID.
    script = (
        "import os, sys, tempfile, pathlib; from byol.atomic import temporary_prefix; "
        "d = tempfile.mkdtemp(prefix=temporary_prefix(pathlib.Path(sys.argv[1])), "
        "dir=sys.argv[2]); open(os.path.join(d, 'images.u8'), 'wb').write(b'x' * 4096); "
        "os.kill(os.getpid(), 9)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    subprocess.run([sys.executable, "-c", script, "images-0123", str(base)], env=env)
    orphan = [p for p in base.iterdir() if ".partial-" in p.name]
    assert len(orphan) == 1
    alive = base / (temporary_prefix(base / "other") + "x")  # this process: still writing
    alive.mkdir()
    assert run_train(tmp_path, str(tmp_path / "images")) == 0
    assert not orphan[0].exists() and alive.exists()


def test_a_shard_run_that_fills_the_disk_leaves_no_temporary_and_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise_images(tmp_path / "images", 40, size=(64, 64))  # about 500 KB of PNGs
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = ["shard", str(tmp_path / "images"), "--out", str(disk / "shards")]
        assert main([*args, "--images-per-shard", "8"]) == 1
        assert "No space left on device" in one_error_line(capsys)
        assert list(disk.iterdir()) == []  # neither the folder nor its temporary
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
