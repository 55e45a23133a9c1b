"""Session-wide fixtures shared by every test area.

``shared_cache_dir``: a cache folder kept across test sessions (``$BYOL_TEST_CACHE``, default
``~/.cache/byol-test``), so slow one-off work such as unpacking CIFAR-10 happens once per
machine. ``cifar10_jpg_root``: the CIFAR-10 JPEG archive unpacked there
(``<root>/train/<class>/*.jpg``, ``<root>/test/<class>/*.jpg``); tests using it are skipped
when the archive (``$BYOL_CIFAR10_TAR``; by default the test fixture copy at
``../shared/data/cifar10-jpg.tar.gz`` beside the repository) is absent.
Pass ``cache_dir=shared_cache_dir`` to ``byol.data.load_images("cifar10-jpg", ...)`` to reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from byol.data.cifar10 import CIFAR10_TAR_ENV, find_cifar10_tar, unpack_cifar10_jpg

# The test fixture copy of CIFAR-10, where the machine has one (beside the repository, or in
# the shared folder of the development machines).
for _folder in (Path(__file__).resolve().parents[1].parent, Path("/work")):
    _archive = _folder / "shared" / "data" / "cifar10-jpg.tar.gz"
    if _archive.is_file():
        os.environ.setdefault(CIFAR10_TAR_ENV, str(_archive))
        break


@pytest.fixture(scope="session")
def shared_cache_dir() -> Path:
    """A persistent cache folder for tests (``$BYOL_TEST_CACHE`` or ``~/.cache/byol-test``)."""
    path = Path(os.environ.get("BYOL_TEST_CACHE", "~/.cache/byol-test")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def cifar10_jpg_root(shared_cache_dir: Path) -> Path:
    """The unpacked CIFAR-10 JPEG copy (unpacked on first use, a few seconds)."""
    if (
        find_cifar10_tar() is None
        and not (shared_cache_dir / "cifar10-jpg" / ".complete").is_file()
    ):
        pytest.skip("cifar10-jpg.tar.gz not found; set BYOL_CIFAR10_TAR to run CIFAR-10 tests")
    return unpack_cifar10_jpg(shared_cache_dir)
