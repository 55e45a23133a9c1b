"""Fixtures shared by every test area.

``shared_cache_dir``: a cache folder kept across test sessions (``$BYOL_TEST_CACHE``, default
``~/.cache/byol-test``), so slow one-off work such as unpacking CIFAR-10 happens once per
machine. ``cifar10_jpg_root``: the CIFAR-10 JPEG archive unpacked there
(``<root>/train/<class>/*.jpg``, ``<root>/test/<class>/*.jpg``); tests using it are skipped
when the archive (``$BYOL_CIFAR10_TAR``; by default the test fixture copy at
``../shared/data/cifar10-jpg.tar.gz`` beside the repository) is absent.
Pass ``cache_dir=shared_cache_dir`` to ``byol.data.load_images("cifar10-jpg", ...)`` to reuse it.

``one_thread`` runs a test single-threaded (request it with
``pytestmark = pytest.mark.usefixtures("one_thread")``). The rest are tiny runs, checkpoints
and data folders, built once per session or per test module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from byol.data.cifar10 import CIFAR10_TAR_ENV, find_cifar10_tar, unpack_cifar10_jpg
from byol.export import export_encoder
from tests.helpers import (
    Resnet18Run,
    TrainedRun,
    one_step_checkpoint,
    one_step_run_folder,
    run_train,
    untrained_run_folder,
    write_colour_folder,
    write_run_figures,
)

REPOSITORY = Path(__file__).resolve().parents[1]

# The repository root importable, so ``benchmarks.speed`` resolves under plain ``pytest``.
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

# The test fixture copy of CIFAR-10, where the machine has one (beside the repository, or in
# the shared folder of the development machines).
for _folder in (REPOSITORY.parent, Path("/work")):
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


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test, restored afterwards.

    Tiny tensors and tiny training runs: with two intra-op threads on two cores that other
    processes share, OpenMP's waiting makes every op tens of times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-step ``byol train`` run on 64 digits, shared by the tests of a module."""
    tmp_path = tmp_path_factory.mktemp("run")
    torch.set_num_threads(1)
    assert run_train(tmp_path, "--data.max_images", "64") == 0
    return tmp_path / "runs" / "run"


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """byol's own SmallResNet (width 8) at 16 px after one step: the cheapest checkpoint."""
    return one_step_checkpoint(tmp_path_factory.mktemp("small"), "small_resnet18_w8", 16)


@pytest.fixture(scope="session")
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled folder of three colour-coded classes (see ``write_colour_folder``)."""
    return write_colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder holding a freshly initialised width-8 BYOL at 16 px."""
    return untrained_run_folder(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def resnet18_run(tmp_path_factory: pytest.TempPathFactory) -> Resnet18Run:
    """A torchvision ResNet-18 at 64 px after one step, its run figures and its export."""
    root = tmp_path_factory.mktemp("resnet18")
    model = one_step_run_folder(root / "run", "resnet18", 64)
    write_run_figures(root / "run")
    export_encoder(root / "run", root / "export", onnx=False)
    return Resnet18Run(model, root / "run", root / "export")
