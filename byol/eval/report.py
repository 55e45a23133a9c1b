"""A self-contained HTML report of a training run.

:func:`write_report` reads ``run_dir/metrics.csv`` (one row per log step; columns ``step``,
``epoch``, ``loss``, ``lr``, ``tau``, ``projection_std``, ``effective_rank``,
``images_per_second`` and the sparse ``knn_top1``/``knn_top5``; any column or value may be
missing), ``run_dir/config.yaml`` and optionally nearest-neighbour retrievals, and writes one
HTML page with inline SVG plots and base64 PNG thumbnails: no external assets, so it can be
mailed or archived as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import yaml
from PIL import Image
from torch import Tensor

from byol.atomic import write_text

# (id, title, columns) of the known plots, in page order; other numeric columns follow.
KNOWN_PLOTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("loss", "BYOL loss", ("loss",)),
    ("lr", "Learning rate", ("lr",)),
    ("tau", "Target decay rate tau", ("tau",)),
    ("knn", "k-NN accuracy", ("knn_top1", "knn_top5")),
    (
        "online",
        "Online linear classifier accuracy",
        ("online_train_top1", "online_test_top1", "online_test_top5"),
    ),
    ("projection_std", "Projection std (collapse -> 0)", ("projection_std",)),
    ("effective_rank", "Effective rank (RankMe)", ("effective_rank",)),
    ("images_per_second", "Throughput (images / s)", ("images_per_second",)),
)
_AXIS_COLUMNS = ("step", "epoch")
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
# Polylines are thinned to about this many points: a million-step run stays a small page.
_MAX_POINTS = 2000
# The final linear probe on a few labels per class (``monitor.final_linear_probe_labels_per_class``).
LINEAR_PROBE_FEW_LABELS_FILE = "linear_probe_few_labels.json"


class Series(NamedTuple):
    """One curve: x (steps) and y values of equal length, all finite."""

    name: str
    x: list[float]
    y: list[float]


def read_metrics(path: Path) -> dict[str, Series]:
    """Columns of a metrics CSV as finite (step, value) series; empty or bad cells are skipped.

    Rows without a usable ``step`` use their row index. Columns with no finite value are left out.
    """
    columns: dict[str, Series] = {}
    # errors="replace": binary junk in the file becomes unparsable cells, which are skipped.
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            step = _to_float(row.get("step"))
            x = float(index) if step is None else step
            for name, cell in row.items():
                if name is None or name in _AXIS_COLUMNS:
                    continue
                value = _to_float(cell)
                if value is not None:
                    columns.setdefault(name, Series(name, [], [])).x.append(x)
                    columns[name].y.append(value)
    return columns


def _to_float(cell: object) -> float | None:
    if not isinstance(cell, str) or not cell.strip():
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 x 10^n steps) covering [low, high].

    Safe for any finite range: a span too small to step through in floating point, or one
    that overflows (``-1e308 .. 1e308``), gets ``low`` and ``high`` as its ticks; non-finite
    bounds give none. At most ``4 * count`` ticks are returned.
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return []
    span = high - low
    scale = max(abs(low), abs(high))
    if not math.isfinite(span) or span <= scale * 1e-9 or span == 0:
        return [low] if span == 0 else [low, high]
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    if last - first > 4 * count:  # pragma: no cover - the step choice prevents it
        return [low, high]
    return [round(index * step, 12) for index in range(first, last + 1)]


def _tick_label(tick: float, ticks: Sequence[float]) -> str:
    """Enough significant digits to tell neighbouring ticks apart (0.9965 vs 0.997)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) >= 2 else 0.0
    largest = max(abs(t) for t in ticks) if ticks else 0.0
    if step == 0 or largest == 0 or not math.isfinite(step):
        return f"{tick:.4g}"
    digits = max(1, math.floor(math.log10(largest)) - math.floor(math.log10(step)) + 1)
    return f"{tick:.{max(digits, 3)}g}"


def _plot_range(low: float, high: float) -> tuple[float, float]:
    """``[low, high]`` widened when too narrow to draw (equal, or equal to float precision)."""
    scale = max(abs(low), abs(high))
    if high - low <= scale * 1e-9:
        pad = scale * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` lies in ``[low, high]``, 0..1, without overflow for huge ranges."""
    return (value / 2 - low / 2) / (high / 2 - low / 2)


def svg_line_plot(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str = "step",
    reference: tuple[str, float] | None = None,
    width: int = 460,
    height: int = 260,
) -> str:
    """An inline SVG line chart with axes, ticks, a legend and an optional dashed reference line.

    Args:
        title: shown above the chart and as the SVG ``<title>``.
        series: curves to draw; empty ones are ignored.
        x_label: label of the horizontal axis.
        reference: (label, y) of a horizontal dashed line, e.g. the isotropic std 1/sqrt(D).
        width, height: pixel size of the SVG.

    Returns:
        An ``<svg>`` element as a string.
    """
    series = [s for s in series if s.x]
    left, right, top, bottom = 62, 12, 28, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{width / 2}" y="16" text-anchor="middle" class="plot-title">'
        f"{html.escape(title)}</text>",
    ]
    if not series:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return "".join([*parts, "</svg>"])
    xs = [x for s in series for x in s.x]
    ys = [y for s in series for y in s.y] + ([reference[1]] if reference else [])
    x_low, x_high = _plot_range(min(xs), max(xs))
    y_low, y_high = _plot_range(min(ys), max(ys))

    def px(x: float) -> float:
        return left + _fraction(x, x_low, x_high) * inner_w

    def py(y: float) -> float:
        return top + (1 - _fraction(y, y_low, y_high)) * inner_h

    parts.append(
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="none" '
        'stroke="#999"/>'
    )
    y_ticks = _nice_ticks(y_low, y_high)
    for tick in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + inner_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
            f'stroke="#eee"/><text x="{left - 4}" y="{py(tick) + 4:.1f}" text-anchor="end" '
            f'class="tick">{_tick_label(tick, y_ticks)}</text>'
        )
    for tick in _nice_ticks(x_low, x_high):
        parts.append(
            f'<text x="{px(tick):.1f}" y="{top + inner_h + 14}" text-anchor="middle" '
            f'class="tick">{tick:.6g}</text>'
        )
    parts.append(
        f'<text x="{left + inner_w / 2}" y="{height - 6}" text-anchor="middle" class="tick">'
        f"{html.escape(x_label)}</text>"
    )
    if reference is not None:
        parts.append(
            f'<line x1="{left}" x2="{left + inner_w}" y1="{py(reference[1]):.1f}" '
            f'y2="{py(reference[1]):.1f}" stroke="#555" stroke-dasharray="5,4"/>'
            f'<text x="{left + inner_w - 4}" y="{py(reference[1]) - 4:.1f}" text-anchor="end" '
            f'class="tick">{html.escape(reference[0])}</text>'
        )
    for index, curve in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(_curve_svg(curve, colour, px, py))
        if len(series) > 1:
            parts.append(
                f'<text x="{left + 8}" y="{top + 14 + 14 * index}" fill="{colour}" '
                f'class="tick">{html.escape(curve.name)}</text>'
            )
    return "".join([*parts, "</svg>"])


def _curve_svg(
    curve: Series, colour: str, px: Callable[[float], float], py: Callable[[float], float]
) -> str:
    """One curve as a polyline (a dot when it has one point), at most about
    :data:`_MAX_POINTS` points, the last one always kept; ``px``/``py`` map data to pixels."""
    stride = max(1, math.ceil(len(curve.x) / _MAX_POINTS))
    keep = list(range(0, len(curve.x), stride))
    if keep[-1] != len(curve.x) - 1:
        keep.append(len(curve.x) - 1)
    points = " ".join(f"{px(curve.x[i]):.1f},{py(curve.y[i]):.1f}" for i in keep)
    if len(keep) == 1:
        x0, y0 = points.split(",")
        return f'<circle cx="{x0}" cy="{y0}" r="3" fill="{colour}"/>'
    return f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>'


def _as_uint8_array(images: Tensor | np.ndarray, name: str) -> np.ndarray:
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    if array.dtype != np.uint8:
        raise ValueError(
            f"{name} must be uint8 images in [0, 255]; got dtype {array.dtype}. Convert with "
            "(x * 255).round().clamp(0, 255).to(torch.uint8) before un-normalising"
        )
    return array


def png_data_uri(image: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 (C, H, W) image, C in {1, 3}."""
    pixels = image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _check_retrieval_shapes(
    queries: np.ndarray,
    neighbours: np.ndarray,
    q_labels: np.ndarray | None,
    n_labels: np.ndarray | None,
) -> None:
    """Raise ``ValueError`` naming the shape that does not fit :func:`retrieval_grid_html`."""
    if queries.ndim != 4 or queries.shape[1] not in (1, 3):
        raise ValueError(f"query_images must be (Q, C, H, W) with C 1 or 3; got {queries.shape}")
    if neighbours.ndim != 5 or neighbours.shape[0] != queries.shape[0]:
        raise ValueError(
            f"neighbour_images must be (Q, K, C, H, W) with Q={queries.shape[0]}; got "
            f"{neighbours.shape}"
        )
    if neighbours.shape[2] not in (1, 3):
        raise ValueError(f"neighbour images must have 1 or 3 channels; got {neighbours.shape[2]}")
    if q_labels is not None and q_labels.shape != (queries.shape[0],):
        raise ValueError(
            f"query_labels must have shape ({queries.shape[0]},); got {q_labels.shape}"
        )
    if n_labels is not None and n_labels.shape != neighbours.shape[:2]:
        raise ValueError(
            f"neighbour_labels must have shape {neighbours.shape[:2]}; got {n_labels.shape}"
        )


def retrieval_grid_html(
    query_images: Tensor | np.ndarray,
    neighbour_images: Tensor | np.ndarray,
    query_labels: Tensor | np.ndarray | Sequence[int] | None = None,
    neighbour_labels: Tensor | np.ndarray | Sequence[Sequence[int]] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    thumbnail_size: int = 64,
) -> str:
    """An HTML table: one row per query, its image then its K nearest neighbours.

    Thumbnails are inline base64 PNGs at native resolution, scaled by the browser to
    ``thumbnail_size`` pixels with pixelated rendering. With labels, each neighbour is framed
    green when its label matches the query's and red otherwise.

    Args:
        query_images: uint8 (Q, C, H, W), C in {1, 3}.
        neighbour_images: uint8 (Q, K, C, H, W).
        query_labels: optional (Q,) class indices.
        neighbour_labels: optional (Q, K) class indices.
        class_names: optional names indexed by label.
        thumbnail_size: displayed side in pixels.

    Returns:
        A ``<table class="retrieval">`` element as a string.

    Raises:
        ValueError: wrong dtype or shapes.
    """
    queries = _as_uint8_array(query_images, "query_images")
    neighbours = _as_uint8_array(neighbour_images, "neighbour_images")
    q_labels = None if query_labels is None else np.asarray(query_labels).reshape(-1)
    n_labels = None if neighbour_labels is None else np.asarray(neighbour_labels)
    _check_retrieval_shapes(queries, neighbours, q_labels, n_labels)

    def name(label: object) -> str:
        index = int(label)  # type: ignore[call-overload]
        if class_names is not None and 0 <= index < len(class_names):
            return class_names[index]
        return str(index)

    def cell(image: np.ndarray, caption: str | None, border: str) -> str:
        text = "" if caption is None else f"<figcaption>{html.escape(caption)}</figcaption>"
        return (
            f'<td><figure class="thumb"><img src="{png_data_uri(image)}" width="{thumbnail_size}"'
            f' height="{thumbnail_size}" style="border-color:{border}" alt="">{text}</figure></td>'
        )

    rows = [
        '<table class="retrieval"><tr><th>query</th>'
        + "".join(f"<th>{k + 1}</th>" for k in range(neighbours.shape[1]))
        + "</tr>"
    ]
    for q in range(queries.shape[0]):
        query_caption = None if q_labels is None else name(q_labels[q])
        row = [cell(queries[q], query_caption, "#000")]
        for k in range(neighbours.shape[1]):
            border, caption = "#ccc", None
            if n_labels is not None:
                caption = name(n_labels[q, k])
                if q_labels is not None:
                    border = "#2ca02c" if n_labels[q, k] == q_labels[q] else "#d62728"
            row.append(cell(neighbours[q, k], caption, border))
        rows.append("<tr>" + "".join(row) + "</tr>")
    return "".join([*rows, "</table>"])


def _retrieval_from_npz(path: Path) -> str:
    with np.load(path, allow_pickle=False) as data:
        if "queries" not in data or "neighbours" not in data:
            raise ValueError(
                f"{path} must hold arrays 'queries' (Q, C, H, W) and 'neighbours' "
                f"(Q, K, C, H, W); found {sorted(data.files)}"
            )
        return retrieval_grid_html(
            data["queries"],
            data["neighbours"],
            data.get("query_labels"),
            data.get("neighbour_labels"),
            class_names=[str(c) for c in data["class_names"]] if "class_names" in data else None,
        )


def _projection_dim(config_text: str) -> int | None:
    try:
        config = yaml.safe_load(config_text)
        value = config["model"]["projection_dim"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure.plot{margin:0;border:1px solid #ddd;padding:4px}
.plot-title{font-size:13px;font-weight:600}.tick{font-size:10px}
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:40em}
table.summary td,table.summary th{padding:2px 10px;text-align:left}
table.retrieval td{padding:2px}figure.thumb{margin:0;text-align:center;font-size:10px}
figure.thumb img{image-rendering:pixelated;border:3px solid #ccc}
"""


def write_report(
    run_dir: str | Path,
    retrieval_html: str | None = None,
    *,
    output: str | Path | None = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` for a run folder and return its path.

    Args:
        run_dir: folder with ``metrics.csv`` and ``config.yaml`` (either may be missing; the
            page says so) and optionally ``retrieval.npz`` (keys ``queries``, ``neighbours``,
            optional ``query_labels``, ``neighbour_labels``, ``class_names``).
        retrieval_html: a precomputed section from :func:`retrieval_grid_html`; takes precedence
            over ``retrieval.npz``.
        output: where to write; ``run_dir/report.html`` by default.
        title: page title; the folder name by default.

    Raises:
        ValueError: ``run_dir`` is not a folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run_dir={run_dir} is not a folder; pass a run's output folder")
    title = title or run_dir.name
    metrics_path, config_path = run_dir / "metrics.csv", run_dir / "config.yaml"
    metrics = read_metrics(metrics_path) if metrics_path.is_file() else {}
    config_text = (
        config_path.read_text(encoding="utf-8", errors="replace") if config_path.is_file() else None
    )
    projection_dim = _projection_dim(config_text) if config_text else None

    baselines = read_baselines(run_dir / "baselines.json")
    body = [f"<h1>BYOL run: {html.escape(title)}</h1>"]
    body.append(_run_summary_html(run_dir / "summary.json"))
    body.append(_baselines_html(metrics, baselines))
    body.append(_linear_probe_html(read_baselines(run_dir / "linear_probe.json")))
    body.append(_few_labels_html(run_dir / LINEAR_PROBE_FEW_LABELS_FILE))
    body.append(_summary_html(metrics))
    body.append("<h2>Training curves</h2>")
    if not metrics:
        body.append(f"<p>No metrics found in {html.escape(str(metrics_path))}.</p>")
    body.append(_plots_html(metrics, baselines, projection_dim))

    body.append('<h2>Nearest-neighbour retrievals</h2><div id="retrieval">')
    retrieval_path = run_dir / "retrieval.npz"
    if retrieval_html is None and retrieval_path.is_file():
        retrieval_html = _retrieval_from_npz(retrieval_path)
    body.append(retrieval_html or "<p>No retrievals recorded for this run.</p>")
    body.append("</div>")

    body.append('<h2>Configuration</h2><pre id="config">')
    body.append(html.escape(config_text) if config_text else "config.yaml not found")
    body.append("</pre>")

    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    path = Path(output) if output is not None else run_dir / "report.html"
    return write_text(path, page)  # atomically: a reader never sees half a page


def _plots_html(
    metrics: dict[str, Series],
    baselines: dict[str, dict[str, float]],
    projection_dim: int | None,
) -> str:
    """Every metric as a plot: the known groups first (with their reference lines: the spread
    1/sqrt(D) of projections, the raw pixels' k-NN), then each other column on its own."""
    figures = []
    plotted: set[str] = set()
    for plot_id, plot_title, columns in KNOWN_PLOTS:
        curves = [metrics[c] for c in columns if c in metrics]
        plotted.update(columns)
        if not curves:
            continue
        reference = None
        if plot_id == "projection_std" and projection_dim:
            reference = (f"1/sqrt({projection_dim})", 1 / math.sqrt(projection_dim))
        if plot_id == "knn" and "raw_pixels" in baselines:
            reference = ("raw pixels", baselines["raw_pixels"]["top1"])
        figures.append((plot_id, columns, svg_line_plot(plot_title, curves, reference=reference)))
    for name, curve in metrics.items():
        if name not in plotted:
            figures.append((name, (name,), svg_line_plot(name, [curve])))
    parts = ['<div class="plots">']
    for plot_id, columns, svg in figures:
        parts.append(
            f'<figure class="plot" id="plot-{html.escape(plot_id)}" '
            f'data-columns="{html.escape(" ".join(columns))}">{svg}</figure>'
        )
    parts.append("</div>")
    return "\n".join(parts)


def read_baselines(path: Path) -> dict[str, dict[str, float]]:
    """``baselines.json`` as ``{name: {"top1": x, "top5": y}}``; empty if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(name): {key: float(value) for key, value in figures.items() if key in ("top1", "top5")}
        for name, figures in data.items()
        if isinstance(figures, dict)
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in figures.values())
    }


def _baselines_html(metrics: dict[str, Series], baselines: dict[str, dict[str, float]]) -> str:
    """The encoder's last k-NN accuracy next to raw pixels and a random encoder, in words."""
    if "knn_top1" not in metrics:
        return ""
    trained = {"top1": metrics["knn_top1"].y[-1]}
    if "knn_top5" in metrics:
        trained["top5"] = metrics["knn_top5"].y[-1]
    rows = [("BYOL encoder (this run)", trained)]
    rows += [(BASELINE_NAMES.get(name, name), figures) for name, figures in baselines.items()]
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_percent(f.get('top1'))}</td>"
        f"<td>{_percent(f.get('top5'))}</td></tr>"
        for name, f in rows
    )
    verdict = ""
    if baselines:
        best_name, best = max(
            ((BASELINE_NAMES.get(n, n), f["top1"]) for n, f in baselines.items() if "top1" in f),
            key=lambda item: item[1],
        )
        points = 100 * (trained["top1"] - best)
        verdict = (
            f"<p>The encoder is <b>{abs(points):.1f} points "
            f"{'above' if points > 0 else 'below'}</b> the best baseline ({html.escape(best_name)})."
            "</p>"
        )
    return (
        '<h2>k-NN accuracy against baselines</h2><table class="summary" id="baselines">'
        "<tr><th>features</th><th>top-1</th><th>top-5</th></tr>" + cells + "</table>" + verdict
    )


def _linear_probe_html(
    probes: dict[str, dict[str, float]],
    title: str = "Linear probe against baselines",
    table_id: str = "linear-probe",
) -> str:
    """``linear_probe.json`` (``monitor.final_linear_probe``): the encoder's fast linear probe
    next to the raw pixels' and a random encoder's."""
    if "encoder" not in probes:
        return ""
    names = {"encoder": "BYOL encoder (this run)", **BASELINE_NAMES}
    cells = "".join(
        f"<tr><td>{html.escape(names.get(name, name))}</td><td>{_percent(f.get('top1'))}</td>"
        f"<td>{_percent(f.get('top5'))}</td></tr>"
        for name, f in probes.items()
        if name in names
    )
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<table class="summary" id="{table_id}">'
        "<tr><th>features</th><th>top-1</th><th>top-5</th></tr>" + cells + "</table>"
    )


def _few_labels_html(path: Path) -> str:
    """The same table for the probe on a few labels per class, when the run fitted one."""
    try:
        labels = json.loads(path.read_text())["labels"]
        per_class, seed = int(labels["labels_per_class"]), int(labels["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    title = f"Linear probe with {per_class} labels per class (subset seed {seed})"
    return _linear_probe_html(read_baselines(path), title, "linear-probe-few-labels")


def _run_summary_html(path: Path) -> str:
    """Data, length, wall time and a collapse verdict from the engine's ``summary.json``."""
    try:
        summary = json.loads(path.read_text())
        minutes, seconds = divmod(round(float(summary["seconds"])), 60)
        text = (
            f"Trained on {int(summary['images'])} images of {summary['data']} for "
            f"{int(summary['epochs'])} epochs ({int(summary['steps'])} steps) in "
            f"{minutes} min {seconds:02d} s. "
        )
        collapsed = bool(summary["collapsed"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    text += (
        "The projections collapsed at some point (their spread fell below the threshold): "
        "see the projection std and effective rank plots."
        if collapsed
        else "No collapse: the projections kept their spread throughout (projection std and "
        "effective rank plots below)."
    )
    return f'<p id="run-summary">{html.escape(text)}</p>'


BASELINE_NAMES = {
    "raw_pixels": "raw pixels (flattened, mean removed)",
    "random_encoder": "random encoder (same architecture, untrained)",
}


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _summary_html(metrics: dict[str, Series]) -> str:
    rows = []
    for name, curve in metrics.items():
        last = f"{curve.y[-1]:.6g} (step {curve.x[-1]:.0f})"
        extra = ""
        if name.startswith("knn_"):
            best = max(range(len(curve.y)), key=lambda i: curve.y[i])
            extra = f"best {curve.y[best]:.6g} (step {curve.x[best]:.0f})"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{last}</td><td>{html.escape(extra)}</td></tr>"
        )
    if not rows:
        return ""
    return (
        '<table class="summary"><tr><th>metric</th><th>last</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
    )
