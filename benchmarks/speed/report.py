"""Machine description and the Markdown results table."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.speed.common import Implementation, package_version

REPO_ROOT = Path(__file__).resolve().parents[2]
CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model: str = platform.processor() or "unknown"
    flags: list[str] = []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("unknown", "", "x86_64"):
            model = value.strip()
        if key.strip() == "flags" and not flags:
            present = set(value.split())
            flags = [f for f in CPU_FLAGS_OF_INTEREST if f in present]
    return model, flags


def cpu_bf16_support() -> str:
    """What oneDNN reports for bfloat16 on this CPU (the fast kernels CPU autocast relies on)."""
    parts = [
        f"mkldnn available={torch.backends.mkldnn.is_available()}",
        f"enabled={torch.backends.mkldnn.enabled}",
        f"cpu capability={torch.backends.cpu.get_cpu_capability()}",
    ]
    try:
        # Private but stable helper; oneDNN's own check for native bf16 kernels.
        parts.append(f"mkldnn bf16 supported={torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    except (AttributeError, RuntimeError):
        parts.append("mkldnn bf16 supported=unknown")
    return ", ".join(parts)


def git_commit() -> str:
    """HEAD's hash, with ``+uncommitted changes`` when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def command_line() -> str:
    """The command as typed from the repository root."""
    return "python -m benchmarks.speed.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def machine_info(device: torch.device, threads: int) -> list[tuple[str, str]]:
    """(name, value) pairs describing the machine and the software."""
    model, flags = _cpu_model_and_flags()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 0
    info = [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("git commit", git_commit()),
        ("command", f"`{command_line()}`"),
        ("CPU", f"{model}, {cores} usable cores, flags: {' '.join(flags) or 'n/a'}"),
        ("torch threads", str(threads)),
        ("CPU bf16", cpu_bf16_support()),
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__}, {package_version('torchvision')}"),
        ("peers", f"{package_version('lightly')}, {package_version('byol-pytorch')}"),
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.append(
            (
                "GPU",
                f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA "
                f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
            )
        )
    return info


@dataclass
class Row:
    """One implementation's figures in images/s (None: not measured)."""

    impl: Implementation
    step: float | None
    data: float | None
    end_to_end: float | None
    flops_per_step: float | None = None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(value: float | None, best: float | None) -> str:
    return "-" if value is None or not best else f"{value / best:.2f}x"


def results_table(rows: Sequence[Row], batch_size: int, peak_tflops: float | None) -> str:
    """The Markdown table; ratios are to the fastest peer in the same column."""

    def best_peer(values: list[float | None]) -> float | None:
        peers = [v for v, r in zip(values, rows, strict=True) if r.impl.is_peer and v is not None]
        return max(peers) if peers else None

    best = [best_peer([getattr(r, name) for r in rows]) for name in ("step", "data", "end_to_end")]
    header = (
        "| implementation | precision | data pipeline | (a) step img/s | (b) data img/s | "
        "(c) end to end img/s | (a) vs best peer | (b) vs best peer | (c) vs best peer | "
        "TFLOP/s (a) |"
    )
    if peak_tflops:
        header += " MFU (a) |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        achieved = None
        if row.flops_per_step is not None and row.step is not None:
            achieved = row.flops_per_step * row.step / batch_size / 1e12
        cells = [
            f"{row.impl.label} {row.impl.package.split(' ')[-1]}",
            row.impl.precision,
            row.impl.pipeline,
            _fmt(row.step),
            _fmt(row.data),
            _fmt(row.end_to_end),
            _ratio(row.step, best[0]),
            _ratio(row.data, best[1]),
            _ratio(row.end_to_end, best[2]),
            _fmt(achieved, 2),
        ]
        if peak_tflops:
            cells.append("-" if achieved is None else f"{100 * achieved / peak_tflops:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(rows: Sequence[Row]) -> list[str]:
    """The project's two targets, stated with the measured numbers."""
    lines = []
    peers = [r.end_to_end for r in rows if r.impl.is_peer and r.end_to_end is not None]
    ours = [r for r in rows if not r.impl.is_peer and r.end_to_end is not None]
    if ours:
        best_ours = max(ours, key=lambda r: r.end_to_end or 0.0)
        name = f"{best_ours.impl.key} ({best_ours.impl.pipeline})"
        e2e = best_ours.end_to_end or 0.0
        if peers:
            ratio = e2e / max(peers)
            verdict = "met" if ratio >= 3.0 else "NOT met"
            lines.append(
                f"our best end to end ({name}) / fastest peer end to end = {ratio:.2f}x "
                f"(target >= 3x: {verdict})"
            )
        step_key = best_ours.impl.shares_step_with or best_ours.impl.key
        step = next((r.step for r in rows if r.impl.key == step_key), None)
        if step:
            ratio = e2e / step
            verdict = "met" if ratio >= 0.9 else "NOT met"
            lines.append(
                f"our best end to end / the same train step alone = {ratio:.2f}x "
                f"(target >= 0.9x: {verdict})"
            )
    return lines


def write_section(path: Path, title: str, body: str) -> None:
    """Append ``## title`` + ``body`` to ``path`` (created with a heading if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# BYOL speed: ours vs lightly vs byol-pytorch\n\n"
            "Written by `python -m benchmarks.speed.run`; one dated section per run, newest "
            "last. Figures are images/s (medians over alternating runs).\n"
        )
    with path.open("a") as handle:
        handle.write(f"\n## {title}\n\n{body.rstrip()}\n")
