"""``train.compile`` compiles the batched augmentation of the engine's view source."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning_fabric import Fabric

from byol.presets import preset
from byol.train.views import CachedViewSource, build_view_source, training_source


def _first_batch(compile_views: bool, cache_dir: Path) -> tuple[torch.Tensor, ...]:
    config = preset("digits")
    config.data.cache_dir = str(cache_dir)
    config.train.compile = compile_views
    fabric = Fabric(accelerator="cpu", devices=1)
    source = build_view_source(config, fabric, training_source(config, progress=False))
    assert isinstance(source, CachedViewSource)
    # Eager: the augmentation's own method; compiled: torch.compile's wrapper around it.
    assert (source.apply_views == source.augment.apply_params) is not compile_views
    return tuple(next(iter(source.epoch_batches(epoch=2, start_batch=1))))


def test_compiled_views_equal_eager_views(tmp_path: Path) -> None:
    eager = _first_batch(False, tmp_path)
    compiled = _first_batch(True, tmp_path)
    for a, b in zip(compiled, eager, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
