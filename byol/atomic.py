"""Atomic outputs: every file or folder byol writes appears whole or not at all.

A file is written to a temporary sibling (``.<name>.partial-<host>-<pid>-<random>``), flushed,
synced, given the permissions an ordinary ``open()`` would give (``0o666`` minus the umask;
``0o777`` minus the umask for folders), and renamed over the target. A crash or a full disk
leaves the previous file intact; the temporary is removed on errors, and one left behind by a
killed process is removed by :func:`remove_stale_temporaries` on a later run: its name says
which process wrote it, and a temporary of a process that no longer runs on this host (or one
older than :data:`STALE_AFTER_SECONDS`, for other hosts of a shared file system) is stale.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

# In the names of temporary files and folders: ``.last.pt.partial-<host>-<pid>-<random>``.
PARTIAL_MARK = ".partial-"
# A temporary from another host counts as stale after this long (no PID to check there).
STALE_AFTER_SECONDS = 24 * 3600


class WriteError(ValueError):
    """An output that could not be written; the previous file there, if any, is unchanged."""


def current_umask() -> int:
    """The process umask (read without changing it where ``/proc`` allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - not on Linux
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def file_mode() -> int:
    """The mode of a new file: ``0o666`` minus the umask, as ``open()`` gives."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode of a new folder: ``0o777`` minus the umask, as ``mkdir`` gives."""
    return 0o777 & ~current_umask()


def _host() -> str:
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(c if c.isalnum() else "_" for c in name)[:32]


def temporary_prefix(target: Path) -> str:
    """``.<name>.partial-<host>-<pid>-``: the start of a temporary's name for ``target``."""
    return f".{target.name}{PARTIAL_MARK}{_host()}-{os.getpid()}-"


def write_atomically(target: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary sibling of ``target``, then rename it into place.

    Raises:
        WriteError: the file could not be written (e.g. no space left on the device); one line
            naming ``target``. Errors of ``write`` other than ``OSError`` pass unchanged.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=temporary_prefix(target), dir=target.parent)
    except OSError as error:
        raise _write_error(target, error) from error
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), file_mode())
        os.replace(temporary, target)
        fsync_folder(target.parent)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_error(target, error) from error
        raise
    return target


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`write_atomically`)."""
    return write_atomically(target, lambda handle: handle.write(data))


def write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 (file names that are not UTF-8 kept as their bytes)."""
    return write_bytes(target, text.encode("utf-8", errors="surrogateescape"))


def write_together(files: dict[Path, bytes]) -> list[Path]:
    """Write several files that belong together: every one to a temporary first, then all
    renamed into place, so a failed write (a full disk) leaves all the previous files."""
    written: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
                prefix=temporary_prefix(target), dir=target.parent, delete=False
            )
            written.append((Path(handle.name), target))
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), file_mode())
        for temporary, target in written:
            os.replace(temporary, target)
    except OSError as error:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise _write_error(target, error) from error
    if written:
        fsync_folder(written[0][1].parent)
    return [target for _, target in written]


def _write_error(target: Path, error: OSError) -> WriteError:
    reason = error.strerror or str(error) or type(error).__name__
    remedy = "free space and run again" if error.errno == errno.ENOSPC else "fix the folder"
    return WriteError(
        f"could not write {target}: {reason}; the previous file there, if any, is unchanged "
        f"({remedy})"
    )


@contextlib.contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces ``target`` as a whole.

    On an error (or a kill) ``target`` is left as it was and the temporary is removed (by
    :func:`remove_stale_temporaries` after a kill). An existing ``target`` is moved aside
    first and deleted after the rename, so there is never a mix of old and new files.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
        temporary.chmod(folder_mode())  # mkdtemp makes it private
    except OSError as error:
        raise _write_error(target, error) from error
    try:
        yield temporary
        replace_folder(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def replace_folder(source: Path, target: Path) -> None:
    """Rename the folder ``source`` to ``target``, replacing an existing ``target``."""
    old = None
    if target.exists():
        old = target.with_name(f"{temporary_prefix(target)}old")
        os.replace(target, old)
    try:
        os.replace(source, target)
    except OSError:
        if old is not None:
            os.replace(old, target)  # put the previous output back
        raise
    fsync_folder(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def is_stale(path: Path) -> bool:
    """Whether the temporary ``path`` (named by :func:`temporary_prefix`) was left by a process
    that no longer runs: the same host and a dead PID, or another host and an old file."""
    name = path.name
    if PARTIAL_MARK not in name:
        return False
    fields = name.split(PARTIAL_MARK, 1)[1].split("-")
    if len(fields) >= 3 and fields[1].isdigit():
        host, pid = fields[0], int(fields[1])
        if host == _host():
            return not _process_alive(pid)
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        return False
    return age > STALE_AFTER_SECONDS


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _restore_moved_aside(path: Path) -> bool:
    """Put back an output :func:`replace_folder` moved aside when a kill came between its two
    renames (the old folder is aside, its replacement not yet in place). True if restored."""
    name = path.name
    if not (name.endswith("-old") and path.is_dir() and name.startswith(".")):
        return False
    target = path.with_name(name[1 : name.index(PARTIAL_MARK)])
    if target.exists():
        return False
    try:
        os.replace(path, target)
    except OSError:
        return False
    return True


def remove_stale_temporaries(folder: str | Path, everything: bool = False) -> list[Path]:
    """Delete the temporaries (``.<name>.partial-*``, files or folders) in ``folder`` that
    killed processes left; ``everything``: all of them (the caller holds the folder's lock).
    Returns what was removed."""
    removed = []
    try:
        candidates = list(Path(folder).glob(f".*{PARTIAL_MARK}*"))
    except OSError:
        return []
    for path in candidates:
        if not (everything or is_stale(path)):
            continue
        if _restore_moved_aside(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
    return removed
