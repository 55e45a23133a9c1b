"""Run the robustness tests single-threaded.

They train tiny models; with two intra-op threads on two cores that other processes share,
OpenMP's waiting makes every op tens of times slower. The setting is restored after each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
