"""The equal-epoch table: k-NN top-1 per epoch of each run, beside the baselines.

Reads the JSON lines of :mod:`benchmarks.quality.ablate` and the JSON of
:mod:`benchmarks.quality.lightly_recipe`, prints a Markdown table.

    python -m benchmarks.quality.table DIR/ours.jsonl DIR/ours-lars.jsonl DIR/lightly.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_runs(paths: list[Path]) -> list[dict[str, object]]:
    """Every run record in ``paths`` (JSON lines or one JSON object per file)."""
    runs: list[dict[str, object]] = []
    for path in paths:
        text = path.read_text().strip()
        if path.suffix == ".jsonl":
            runs += [json.loads(line) for line in text.splitlines() if line]
        else:
            runs.append(json.loads(text))
    return runs


def _name(run: dict[str, object]) -> str:
    """The run's column: its variant (with its seed unless 0) or its implementation."""
    name = str(run.get("variant") or run.get("implementation"))
    seed = run.get("seed")
    return f"{name} seed {seed}" if seed else name


def markdown(runs: list[dict[str, object]]) -> str:
    """Rows: epochs; columns: runs, then the baselines of the first run that has them."""
    names = [_name(run) for run in runs]
    curves = [
        {int(k): float(v) for k, v in dict(run["knn_top1_by_epoch"]).items()}  # type: ignore[call-overload]
        for run in runs
    ]
    baselines = next((dict(run["baselines"]) for run in runs if run.get("baselines")), {})  # type: ignore[call-overload]
    header = ["epoch", *names, *(f"{name} (baseline)" for name in baselines)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for epoch in sorted(set().union(*curves)):
        cells = [f"{100 * curve[epoch]:.2f}%" if epoch in curve else "" for curve in curves]
        cells += [f"{100 * float(value):.2f}%" for value in baselines.values()]
        lines.append("| " + " | ".join([str(epoch), *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    print(markdown(read_runs(parser.parse_args().paths)))


if __name__ == "__main__":
    main()
