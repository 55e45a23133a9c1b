"""The one atomic-write helper: whole files or none, the umask's permissions, stale
temporaries recognised by the PID that wrote them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from byol.atomic import (
    WriteError,
    atomic_folder,
    is_stale,
    remove_stale_temporaries,
    temporary_prefix,
    write_text,
    write_together,
)
from tests.helpers import noise_images, run_train


def test_written_files_get_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        file = write_text(tmp_path / "a.txt", "x")
        with atomic_folder(tmp_path / "out") as staging:
            (staging / "b").write_text("y")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750


def test_a_failed_folder_write_leaves_the_old_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as staging:
        (staging / "new").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["old"]


def test_files_written_together_are_all_kept_when_one_fails(tmp_path: Path) -> None:
    first, second = tmp_path / "f.npy", tmp_path / "f.paths.txt"
    write_together({first: b"old", second: b"old"})
    with pytest.raises(WriteError, match="could not write"):
        write_together({first: b"new", tmp_path / "missing" / "x": b"new"})
    assert first.read_bytes() == b"old" and second.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "f.paths.txt"]


def test_only_temporaries_of_dead_processes_are_stale(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    mine = tmp_path / (temporary_prefix(tmp_path / "a") + "x1")
    theirs = tmp_path / (
        temporary_prefix(tmp_path / "a").replace(f"-{os.getpid()}-", f"-{pid}-") + "x2"
    )
    mine.write_bytes(b"")
    theirs.write_bytes(b"")
    assert not is_stale(mine) and is_stale(theirs)
    assert remove_stale_temporaries(tmp_path) == [theirs]
    assert mine.exists() and not theirs.exists()


@pytest.mark.usefixtures("one_thread")
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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    subprocess.run([sys.executable, "-c", script, "images-0123", str(base)], env=env)
    orphan = [p for p in base.iterdir() if ".partial-" in p.name]
    assert len(orphan) == 1
    alive = base / (temporary_prefix(base / "other") + "x")  # this process: still writing
    alive.mkdir()
    assert run_train(tmp_path, str(tmp_path / "images")) == 0
    assert not orphan[0].exists() and alive.exists()
