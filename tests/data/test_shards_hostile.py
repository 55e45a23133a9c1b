"""Hostile or odd files in shards: undecodable and decompression-bomb images, edited shard
indexes, a disk that fills while sharding."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from byol.cli.main import main
from byol.data.shards import read_shard_set
from tests.helpers import noise_images, noise_png_bytes, one_error_line, run_train

pytestmark = pytest.mark.usefixtures("one_thread")


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
    members = [noise_png_bytes(seed=i) for i in range(14)] + [b"garbage bytes", bomb_png()]
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
    _hand_made_shards(tmp_path / "shards", [noise_png_bytes(seed=i) for i in range(8)])
    index_file = tmp_path / "shards" / "shards.json"
    index = json.loads(index_file.read_text())
    edit(index["shards"][0])  # type: ignore[operator]
    index_file.write_text(json.dumps(index))
    assert run_train(tmp_path, str(tmp_path / "shards")) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


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
