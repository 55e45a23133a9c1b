from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from byol.eval.report import Series, read_metrics, retrieval_grid_html, svg_line_plot, write_report
from byol.train.run_log import METRIC_COLUMNS

COLUMNS = list(METRIC_COLUMNS)
CONFIG = "model:\n  backbone: resnet18\n  projection_dim: 256\ntarget:\n  tau_base: 0.99\n"


def _write_run(run_dir: Path, rows: int = 30) -> None:
    with (run_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(rows):
            step = 10 * i
            writer.writerow(
                {
                    "step": step,
                    "epoch": i // 10,
                    "loss": 4 * math.exp(-i / 10),
                    "lr": 0.1 * i / rows,
                    "tau": 0.99 + 0.01 * i / rows,
                    "projection_std": 0.06,
                    "effective_rank": 100 + i,
                    "images_per_second": 900,
                    # Sparse columns: k-NN only every 10 rows, empty cells elsewhere.
                    "knn_top1": 0.1 * i / 10 if i % 10 == 0 else "",
                    "knn_top5": 0.5 if i % 10 == 0 else "",
                }
            )
    (run_dir / "config.yaml").write_text(CONFIG)
    generator = np.random.default_rng(0)
    np.savez(
        run_dir / "retrieval.npz",
        queries=generator.integers(0, 256, (3, 3, 8, 8), dtype=np.uint8),
        neighbours=generator.integers(0, 256, (3, 4, 3, 8, 8), dtype=np.uint8),
        query_labels=np.array([0, 1, 2]),
        neighbour_labels=np.array([[0, 0, 1, 0], [1, 1, 1, 1], [2, 0, 2, 2]]),
    )


def test_report_contains_plots_config_and_retrievals(tmp_path: Path) -> None:
    _write_run(tmp_path)
    path = write_report(tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    for plot in [
        "loss",
        "lr",
        "tau",
        "knn",
        "projection_std",
        "effective_rank",
        "images_per_second",
    ]:
        assert f'id="plot-{plot}"' in page
    for title in ["BYOL loss", "Learning rate", "k-NN accuracy", "Effective rank (RankMe)"]:
        assert f"<title>{title}</title>" in page
    # Both k-NN curves share one plot, and the collapse reference line uses the config's D.
    assert page.count("knn_top") >= 2
    assert "1/sqrt(256)" in page
    assert "projection_dim: 256" in page
    images = re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) == 3 * (1 + 4)
    # Matching neighbours framed green, others red.
    assert page.count("border-color:#d62728") == 2
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "best 0.2" in page  # best k-NN top-1 in the summary


def test_missing_columns_and_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("step,loss,custom_metric\n0,1.5,\n1,nan,2\n2,1.0,3\n")
    page = write_report(tmp_path, output=tmp_path / "out.html", title="tiny").read_text()
    assert 'id="plot-loss"' in page
    assert 'id="plot-custom_metric"' in page
    for absent in ["lr", "tau", "knn", "projection_std"]:
        assert f'id="plot-{absent}"' not in page
    assert "config.yaml not found" in page
    assert "No retrievals recorded" in page


def test_precomputed_retrieval_section_is_used(tmp_path: Path) -> None:
    section = retrieval_grid_html(
        torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)
    )
    page = write_report(tmp_path, retrieval_html=section).read_text()
    assert page.count("data:image/png;base64,") == 3


def test_read_metrics_skips_empty_and_non_finite_cells(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss,knn_top1\n0,1.0,\n5,inf,0.3\n9,0.5,bad\n")
    metrics = read_metrics(path)
    assert metrics["loss"].x == [0.0, 9.0] and metrics["loss"].y == [1.0, 0.5]
    assert metrics["knn_top1"].x == [5.0]


def test_retrieval_grid_with_class_names_and_grayscale() -> None:
    section = retrieval_grid_html(
        np.zeros((2, 1, 5, 5), np.uint8),
        np.full((2, 3, 1, 5, 5), 255, np.uint8),
        [0, 1],
        [[0, 1, 1], [1, 1, 0]],
        class_names=["cat", "dog"],
    )
    assert section.count("<tr>") == 3  # header + 2 queries
    assert section.count("dog") == 5 and "cat" in section


def test_retrieval_grid_rejects_float_images_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        retrieval_grid_html(torch.rand(1, 3, 4, 4), torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="neighbour_images"):
        retrieval_grid_html(np.zeros((2, 3, 4, 4), np.uint8), np.zeros((1, 2, 3, 4, 4), np.uint8))


def test_plot_handles_single_points_and_constant_series() -> None:
    svg = svg_line_plot("x", [Series("a", [3.0], [1.0]), Series("b", [1.0, 2.0], [5.0, 5.0])])
    assert "<circle" in svg and "<polyline" in svg
    assert "no data" in svg_line_plot("empty", [])


def test_write_report_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a folder"):
        write_report(tmp_path / "missing")


def test_report_sets_the_encoder_against_its_baselines(tmp_path: Path) -> None:
    import json

    (tmp_path / "metrics.csv").write_text("step,loss,knn_top1,knn_top5\n10,1.0,0.52,0.9\n")
    (tmp_path / "baselines.json").write_text(
        json.dumps(
            {
                "raw_pixels": {"top1": 0.44, "top5": 0.89},
                "random_encoder": {"top1": 0.31, "top5": 0.81},
            }
        )
    )
    page = write_report(tmp_path).read_text()
    table = page[page.index('id="baselines"') :]
    assert "52.00%" in table and "44.00%" in table and "31.00%" in table
    assert "8.0 points" in table and "above" in table  # 52% vs the best baseline, 44%
    # Unreadable baselines leave the report intact.
    (tmp_path / "baselines.json").write_text("{not json")
    assert 'id="baselines"' in write_report(tmp_path).read_text()
