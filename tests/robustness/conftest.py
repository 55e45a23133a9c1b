"""Run the robustness tests single-threaded.

They train tiny models; with two intra-op threads on two cores that other processes share,
OpenMP's waiting makes every op tens of times slower. The setting is restored after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from .helpers import run_train


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-step run on 64 digits, shared by the tests of a module."""
    tmp_path = tmp_path_factory.mktemp("run")
    torch.set_num_threads(1)
    assert run_train(tmp_path, "--data.max_images", "64") == 0
    return tmp_path / "runs" / "run"
