"""Smoke test of the speed harness: a tiny model, a tiny JPEG folder, every timer once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.speed import run
from benchmarks.speed.common import BenchSpec, Implementation, random_views
from benchmarks.speed.report import Row, checks, results_table

PEERS = {"lightly": "lightly", "byol-pytorch": "byol_pytorch"}


def _image_folder(root: Path, per_class: int = 8, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=90)
    return root


def test_quick_run_writes_a_table_with_every_available_row(tmp_path: Path) -> None:
    data = _image_folder(tmp_path / "images")
    output = tmp_path / "speed.md"
    keys = ["ours-fp32", "ours-fast", "ours-fast-per-image"]
    keys += [key for key, module in PEERS.items() if importlib.util.find_spec(module)]
    code = run.main(
        [
            "--quick",
            "--device", "cpu",
            "--threads", "1",
            "--backbone", "small_resnet18_w8",
            "--batch-size", "8",
            "--hidden-dim", "32",
            "--projection-dim", "16",
            "--workers", "0",
            "--steps", "0", "1",
            "--data-root", str(data),
            "--cache-dir", str(tmp_path / "cache"),
            "--output", str(output),
            "--only", *keys,
        ]
    )  # fmt: skip
    assert code == 0
    text = output.read_text()
    assert "| implementation |" in text
    assert "uint8 cache: decoded and cached, 16 images at 32 px" in text
    table = [line for line in text.splitlines() if line.startswith(("| byol", "| lightly"))]
    assert len(table) == len(keys)
    e2e_rows = [key in run.QUICK_E2E for key in keys]  # rows appear in the order of ALL_KEYS
    for line, has_e2e in zip(table, e2e_rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        step, data_rate, e2e = cells[3:6]
        assert float(step) > 0 and float(data_rate) > 0, line
        assert (float(e2e) > 0) if has_e2e else e2e == "-", line


def _row(key: str, peer: bool, step: float, data: float, e2e: float) -> Row:
    spec = BenchSpec(device=torch.device("cpu"), batch_size=2, image_size=8)
    impl = Implementation(
        key=key,
        label=key,
        precision="fp32",
        pipeline=f"pipeline of {key}",
        package=f"{key} 1.0",
        synthetic=lambda: random_views(spec),
        step=lambda batch: None,
        is_peer=peer,
    )
    return Row(impl, step, data, e2e)


def test_ratios_are_to_the_fastest_peer_and_targets_are_judged() -> None:
    rows = [
        _row("ours", False, step=40.0, data=1000.0, e2e=36.0),
        _row("peer-a", True, step=10.0, data=500.0, e2e=12.0),
        _row("peer-b", True, step=20.0, data=250.0, e2e=9.0),
    ]
    table = results_table(rows, batch_size=2, peak_tflops=None)
    ours_line = next(line for line in table.splitlines() if line.startswith("| ours"))
    assert "2.00x | 2.00x | 3.00x" in ours_line  # 40/20, 1000/500, 36/12
    lines = checks(rows)
    assert any("3.00x (target >= 3x: met)" in line for line in lines)
    assert any("0.90x (target >= 0.9x: met)" in line for line in lines)
    rows[0].end_to_end = 30.0
    assert all("NOT met" in line for line in checks(rows))


@pytest.mark.parametrize("channels_last", [False, True])
def test_random_views_have_the_spec_shape(channels_last: bool) -> None:
    spec = BenchSpec(device=torch.device("cpu"), batch_size=3, image_size=8)
    views = random_views(spec, 2, channels_last=channels_last)
    assert [tuple(v.shape) for v in views] == [(3, 3, 8, 8)] * 2
    assert views[0].is_contiguous(memory_format=torch.channels_last) == channels_last
