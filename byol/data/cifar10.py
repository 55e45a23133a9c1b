"""CIFAR-10 (Krizhevsky, 2009): 50,000 train / 10,000 test colour images, 32x32, 10 classes.

Two copies are supported:

- ``torchvision``: the original binary release through ``torchvision.datasets.CIFAR10``
  (downloaded into ``<cache_dir>/cifar10-python`` when the machine has internet);
- ``jpg``: the local archive ``cifar10-jpg.tar.gz`` (every image as a JPEG, ImageFolder
  layout ``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``), unpacked once into
  ``<cache_dir>/cifar10-jpg/``. Its pixels went through JPEG once, so accuracies measured on it
  are close to, not identical with, published CIFAR-10 figures: reports should say which copy
  they used (``ImageCache.description`` does).

The archive is found through ``$BYOL_CIFAR10_TAR``, else as ``cifar10-jpg.tar.gz`` in the
default cache folder (``~/.cache/byol``) or the working directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_TAR_NAME = "cifar10-jpg.tar.gz"
CIFAR10_TAR_SHA256 = "a323cea4754a117e0ee1d7636a3c0cfa3ffc143c5d864482b36bb8fcf5f69ac4"
CIFAR10_TAR_ENV = "BYOL_CIFAR10_TAR"
CIFAR10_JPG_DIRNAME = "cifar10-jpg"
CIFAR10_TORCHVISION_DIRNAME = "cifar10-python"
_COMPLETE_MARKER = ".complete"

Split = Literal["train", "test"]


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")


def cifar10_tar_candidates() -> list[Path]:
    """Where :func:`find_cifar10_tar` looks, in order (without ``$BYOL_CIFAR10_TAR``)."""
    folders = [Path("~/.cache/byol").expanduser(), Path.cwd()]
    unique: list[Path] = []
    for folder in folders:
        candidate = folder / CIFAR10_TAR_NAME
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_cifar10_tar() -> Path | None:
    """The local ``cifar10-jpg.tar.gz``, or None when there is none.

    ``$BYOL_CIFAR10_TAR`` wins when set; raises ``ValueError`` if it names a missing file.
    """
    override = os.environ.get(CIFAR10_TAR_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ValueError(
                f"{CIFAR10_TAR_ENV}={override!r} is not a file; point it at {CIFAR10_TAR_NAME} "
                f"or unset it"
            )
        return path
    for candidate in cifar10_tar_candidates():
        if candidate.is_file():
            return candidate
    return None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(archive: tarfile.TarFile, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(destination, filter="data")
        return
    # Pythons without extraction filters: accept only plain files and folders inside.
    members = []
    for member in archive.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise ValueError(f"archive member {member.name!r} is unsafe; the archive is damaged")
        members.append(member)
    archive.extractall(destination, members=members)  # members checked above


def cifar10_jpg_root(cache_dir: str | os.PathLike[str]) -> Path:
    """``<cache_dir>/cifar10-jpg``: where the archive is (or will be) unpacked."""
    return Path(cache_dir).expanduser() / CIFAR10_JPG_DIRNAME


def is_cifar10_jpg_unpacked(cache_dir: str | os.PathLike[str]) -> bool:
    """Whether a complete unpacked copy exists under ``cache_dir``."""
    return (cifar10_jpg_root(cache_dir) / _COMPLETE_MARKER).is_file()


def unpack_cifar10_jpg(
    cache_dir: str | os.PathLike[str],
    tar_path: str | os.PathLike[str] | None = None,
    verify_sha256: bool = True,
) -> Path:
    """Unpack the JPEG archive once into ``<cache_dir>/cifar10-jpg`` and return that folder.

    Later calls return at once. The archive is extracted into a temporary sibling folder that
    is renamed into place when complete, so an interrupted unpack leaves nothing half-done and
    concurrent callers agree on one copy. ``verify_sha256``: check the archive against the
    published sha256 before unpacking (about 0.1 s). Raises ``ValueError`` when no archive can
    be found, the checksum differs, or ``cache_dir`` is not writable.
    """
    destination = cifar10_jpg_root(cache_dir)
    if (destination / _COMPLETE_MARKER).is_file():
        return destination
    archive_path = Path(tar_path).expanduser() if tar_path is not None else find_cifar10_tar()
    if archive_path is None:
        searched = ", ".join(str(p) for p in cifar10_tar_candidates())
        raise ValueError(
            f"{CIFAR10_TAR_NAME} not found (searched {searched}); set {CIFAR10_TAR_ENV} to its path"
        )
    if not archive_path.is_file():
        raise ValueError(f"tar_path {str(archive_path)!r} is not a file; pass {CIFAR10_TAR_NAME}")
    if verify_sha256:
        actual = sha256_file(archive_path)
        if actual != CIFAR10_TAR_SHA256:
            raise ValueError(
                f"{archive_path} has sha256 {actual}, expected {CIFAR10_TAR_SHA256}; the file "
                f"is damaged or a different archive (replace it, or pass verify_sha256=False)"
            )
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
        temp.chmod(0o755)  # mkdtemp makes it private; the unpacked copy is shared data
    except OSError as error:
        raise ValueError(
            f"cache_dir {str(cache_dir)!r} is not writable ({error.strerror}); set "
            f"data.cache_dir to a writable folder"
        ) from error
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            _extract(archive, temp)
        for split in ("train", "test"):
            missing = [c for c in CIFAR10_CLASSES if not (temp / split / c).is_dir()]
            if missing:
                raise ValueError(
                    f"{archive_path} lacks {split}/{missing[0]}/; it is not the CIFAR-10 JPEG "
                    f"archive ({CIFAR10_TAR_NAME})"
                )
        (temp / _COMPLETE_MARKER).write_text(f"{archive_path}\n")
        if destination.exists() and not (destination / _COMPLETE_MARKER).is_file():
            # Left by an unpack from an older version or by hand: replace it.
            shutil.rmtree(destination)
        try:
            os.rename(temp, destination)
        except OSError:
            if not (destination / _COMPLETE_MARKER).is_file():
                raise
            # Another process finished first; its copy is identical.
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return destination


def cifar10_jpg_split(
    split: Split,
    cache_dir: str | os.PathLike[str],
    tar_path: str | os.PathLike[str] | None = None,
) -> Path:
    """The unpacked ImageFolder of one split, ``<cache_dir>/cifar10-jpg/<split>``."""
    _check_split(split)
    return unpack_cifar10_jpg(cache_dir, tar_path) / split


def cifar10_torchvision_root(cache_dir: str | os.PathLike[str]) -> Path:
    """``<cache_dir>/cifar10-python``: torchvision's download folder."""
    return Path(cache_dir).expanduser() / CIFAR10_TORCHVISION_DIRNAME


def has_torchvision_cifar10(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds torchvision's extracted ``cifar-10-batches-py`` files."""
    batches = Path(root).expanduser() / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return all((batches / name).is_file() for name in names)


def load_cifar10_torchvision(
    split: Split, root: str | os.PathLike[str], download: bool = True
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The original CIFAR-10 through ``torchvision.datasets.CIFAR10``.

    Returns ``images`` (N, 32, 32, 3) uint8 and ``labels`` (N,) int64 (N = 50,000 or 10,000).
    ``download``: fetch the archive into ``root`` when missing (needs internet). Raises
    ``ValueError`` when the data is neither present nor downloadable.
    """
    _check_split(split)
    from torchvision.datasets import CIFAR10

    root_path = Path(root).expanduser()
    try:
        dataset = CIFAR10(str(root_path), train=split == "train", download=download)
    except (RuntimeError, OSError) as error:
        raise ValueError(
            f"torchvision CIFAR-10 is not in {str(root_path)!r} and could not be downloaded "
            f"({type(error).__name__}: {error}); use the local JPEG copy (source "
            f"'cifar10-jpg') or set {CIFAR10_TAR_ENV}"
        ) from error
    images = np.asarray(dataset.data, dtype=np.uint8)
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return images, labels
