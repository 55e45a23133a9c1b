"""The report's axes for ranges too small, too large or too odd for naive tick stepping; the
report is written at the end of every run, so it must finish quickly whatever the metrics."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from byol.eval.report import _nice_ticks, write_report


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (1.0, 1.0000000000000002),  # one ulp apart: stepping by the span never advances
        (-1e308, 1e308),  # the span overflows to inf
        (1e-300, 2e-300),
        (0.0, 0.0),
        (5.0, 5.0),
        (math.nan, 1.0),
        (-math.inf, 1.0),
    ],
)
def test_ticks_are_few_and_finite_for_any_range(low: float, high: float) -> None:
    ticks = _nice_ticks(low, high)
    assert len(ticks) <= 20 and all(math.isfinite(t) for t in ticks)


@pytest.mark.parametrize(
    "values",
    [("1.0", "1.0000000000000002"), ("-1e308", "1e308"), ("nan", "inf"), ("1e308", "1e308")],
)
def test_report_of_extreme_metrics_is_written_at_once(
    tmp_path: Path, values: tuple[str, str]
) -> None:
    rows = "".join(f"{step},0,{value},0.1\n" for step, value in enumerate(values, start=1))
    (tmp_path / "metrics.csv").write_text("step,epoch,loss,lr\n" + rows)
    started = time.monotonic()
    page = write_report(tmp_path).read_text()
    assert time.monotonic() - started < 5
    assert "<svg" in page
    plots = page.split('<pre id="config">')[0]
    assert "nan" not in plots and "inf" not in plots.replace("<title>", "")


def test_ordinary_ticks_are_unchanged() -> None:
    assert _nice_ticks(0.0, 1.0) == [0.0, 0.5, 1.0]
    assert _nice_ticks(0.001, 0.0042) == [0.001, 0.002, 0.003, 0.004]
    assert _nice_ticks(0.9965, 0.9971) == [0.9966, 0.9968, 0.997]
