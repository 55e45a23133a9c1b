"""Benchmark our BYOL against lightly and byol-pytorch: train step, data, end to end.

Run from the repository root::

    python -m benchmarks.speed.run --quick                 # CPU, a few minutes on 2 cores
    python -m benchmarks.speed.run                         # CPU, more steps (about 40 min)
    python -m benchmarks.speed.run --device cuda --peak-tflops 989   # H100, bf16 dense peak

Figures (images/s): (a) the train step alone on pre-augmented random tensors; (b) the data
pipeline alone (decode + two augmented views) from a JPEG folder (CIFAR-10 by default);
(c) data + step end to end. Implementations are interleaved (see :mod:`.timing`); the table
is printed and appended to ``benchmarks/results/<date>-speed-<device>/README.md``. On CUDA
a second table times ResNet-50 at 224 px (step alone) with model FLOP utilisation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from benchmarks.speed import peer_byol_pytorch, peer_lightly
from benchmarks.speed.common import BenchSpec, DataSource, Implementation
from benchmarks.speed.data import DEFAULT_CACHE_DIR, cifar10_source, folder_source
from benchmarks.speed.ours import build_ours, build_ours_reference
from benchmarks.speed.report import Row, checks, machine_info, results_table, write_section
from benchmarks.speed.timing import StepTimer, Timings, step_flops, time_blocks

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
ALL_KEYS = (
    "ours-fp32",
    "ours-fast",
    "ours-compiled",
    "ours-fast-per-image",
    "lightly",
    "byol-pytorch",
)
QUICK_E2E = ("ours-fast", "ours-compiled", "ours-fast-per-image", "lightly", "byol-pytorch")


@dataclass(frozen=True)
class Schedule:
    """How many steps/batches each timer runs.

    The ``step_timed`` rounds of (a) are split into ``rounds + 1`` groups placed before, between
    and after the ``rounds`` rounds of (b) and (c) blocks; each block runs its own warm-up.
    """

    step_warmup: int
    step_timed: int
    rounds: int
    data_warmup: int
    data_timed: int
    e2e_warmup: int
    e2e_timed: int

    def step_groups(self) -> list[int]:
        parts = self.rounds + 1
        return [self.step_timed // parts + (i < self.step_timed % parts) for i in range(parts)]


QUICK = Schedule(1, 2, 1, 1, 3, 1, 2)
FULL = Schedule(2, 12, 3, 2, 10, 2, 6)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps (a few minutes on CPU)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--no-cifar-stem", action="store_true", help="keep the 7x7/2 stem")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-dim", type=int, default=4096)
    parser.add_argument("--projection-dim", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--data-root", help="ImageFolder root (default: CIFAR-10 JPEG train)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--only", nargs="+", choices=ALL_KEYS, help="rows to run")
    parser.add_argument("--skip", nargs="+", default=[], choices=("step", "data", "e2e"))
    parser.add_argument("--steps", type=int, nargs=2, metavar=("WARMUP", "TIMED"))
    parser.add_argument("--rounds", type=int, help="rounds of data / end-to-end blocks")
    parser.add_argument("--peak-tflops", type=float, help="for MFU, e.g. 989 (H100 bf16 dense)")
    parser.add_argument("--flops", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--large",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time ResNet-50 at 224 px, batch --large-batch-size (default: on CUDA only)",
    )
    parser.add_argument("--large-batch-size", type=int, default=128)
    parser.add_argument(
        "--output", type=Path, help="default: results/<date>-speed-<device>/README.md"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def build_implementations(spec: BenchSpec, keys: Sequence[str]) -> list[Implementation]:
    """The rows named by ``keys`` that can run here (missing peers are skipped with a note)."""
    impls: list[Implementation] = []
    if "ours-fp32" in keys:
        impls.append(build_ours(spec, fast=False))
    if "ours-fast" in keys or "ours-fast-per-image" in keys:
        fast = build_ours(spec, fast=True)
        if "ours-fast" in keys:
            impls.append(fast)
        if "ours-fast-per-image" in keys:
            impls.append(build_ours_reference(spec, fast))
    if "ours-compiled" in keys:
        impls.append(build_ours(spec, fast=True, compiled=True))
    if "lightly" in keys:
        if peer_lightly.available():
            impls.append(peer_lightly.build_lightly(spec))
        else:
            log("lightly is not installed: skipped (pip install -e .[bench])")
    if "byol-pytorch" in keys:
        if peer_byol_pytorch.available():
            impls.append(peer_byol_pytorch.build_byol_pytorch(spec))
        else:
            log("byol-pytorch is not installed: skipped (pip install -e .[bench])")
    return impls


def _source(args: argparse.Namespace) -> DataSource:
    if args.data_root:
        return folder_source(args.data_root, args.cache_dir)
    return cifar10_source(args.cache_dir)


def _distinct_pipelines(impls: list[Implementation]) -> list[Implementation]:
    """One row per data pipeline: ours-fp32 and ours-fast share the batched one."""
    seen: set[str] = set()
    rows = []
    for impl in impls:
        if impl.pipeline not in seen and impl.data_stream is not None:
            seen.add(impl.pipeline)
            rows.append(impl)
    return rows


def measure(
    spec: BenchSpec,
    impls: list[Implementation],
    schedule: Schedule,
    args: argparse.Namespace,
    e2e_keys: Sequence[str],
) -> tuple[list[Row], list[str]]:
    """Run the three timers, interleaved, over ``impls``; returns the rows and report notes."""
    notes: list[str] = []
    step_rows = [i for i in impls if i.shares_step_with is None]
    timer = StepTimer(step_rows if "step" not in args.skip else [], spec, log)
    log(f"(a) train step alone, (b) data alone, (c) end to end: {spec.describe}")
    timer.rounds(schedule.step_warmup, warmup=True)
    with_data = "data" not in args.skip
    with_e2e = "e2e" not in args.skip and bool(e2e_keys)
    source = _source(args) if with_data or with_e2e else None
    if source is not None:
        notes.append(f"images: {source.root}")
        for impl in impls:
            note = impl.prepare(source) if impl.prepare is not None else ""
            if note:
                notes.append(f"{impl.key}: {note}")
                log(note)
    data_rows = _distinct_pipelines(impls)
    e2e_rows = [i for i in impls if i.key in e2e_keys]
    data_timings: dict[str, Timings] = {}
    e2e_timings: dict[str, Timings] = {}
    groups = schedule.step_groups()
    for round_index in range(schedule.rounds):
        timer.rounds(groups[round_index])
        if source is not None and with_data:
            log(f"(b) data pipeline alone, round {round_index + 1}")
            time_blocks(
                data_rows, spec, source, False, schedule.data_warmup, schedule.data_timed,
                data_timings, log,
            )  # fmt: skip
        if source is not None and with_e2e:
            log(f"(c) end to end, round {round_index + 1}")
            time_blocks(
                e2e_rows, spec, source, True, schedule.e2e_warmup, schedule.e2e_timed,
                e2e_timings, log,
            )  # fmt: skip
    timer.rounds(groups[-1])
    rows = []
    for impl in impls:
        step_timing = timer.results.get(impl.shares_step_with or impl.key)
        owner = next((r for r in data_rows if r.pipeline == impl.pipeline), None)
        data_timing = data_timings.get(owner.key) if owner else None
        e2e_timing = e2e_timings.get(impl.key)
        rows.append(
            Row(
                impl,
                step_timing.images_per_second() if step_timing else None,
                data_timing.images_per_second() if data_timing else None,
                e2e_timing.images_per_second() if e2e_timing else None,
            )
        )
    if args.flops:
        log("counting FLOPs of one step per implementation")
        flops = {i.key: step_flops(i, spec) for i in step_rows}
        for row in rows:
            row.flops_per_step = flops[row.impl.shares_step_with or row.impl.key]
        notes.append(
            "FLOPs per step (FlopCounterMode, conv + matmul, forward + backward): "
            + ", ".join(f"{key} {value / 1e9:.1f} GFLOP" for key, value in flops.items())
        )
    return rows, notes


def section_body(
    info: list[tuple[str, str]],
    spec: BenchSpec,
    schedule: Schedule,
    tables: list[tuple[str, str]],
    notes: list[str],
) -> str:
    lines = [f"- {name}: {value}" for name, value in info]
    lines.append(
        f"- schedule: step {schedule.step_warmup} warm-up + {schedule.step_timed} timed rounds "
        f"(alternating, in groups {schedule.step_groups()} around the blocks); data and end "
        f"to end {schedule.rounds} round(s) of blocks, "
        f"{schedule.data_warmup}+{schedule.data_timed} / {schedule.e2e_warmup}+"
        f"{schedule.e2e_timed} batches (warm-up + timed)"
    )
    for title, table in tables:
        lines += ["", f"### {title}", "", table]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device; use --device cpu")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for every implementation alike
    schedule = QUICK if args.quick else FULL
    if args.steps:
        schedule = replace(schedule, step_warmup=args.steps[0], step_timed=args.steps[1])
    if args.rounds:
        schedule = replace(schedule, rounds=args.rounds)
    spec = BenchSpec(
        device=device,
        backbone=args.backbone,
        cifar_stem=not args.no_cifar_stem,
        image_size=args.image_size,
        batch_size=args.batch_size,
        hidden_dim=args.hidden_dim,
        projection_dim=args.projection_dim,
        workers=args.workers,
    )
    keys = tuple(args.only or ALL_KEYS)
    e2e_keys = [k for k in keys if k in QUICK_E2E] if args.quick else list(keys)
    impls = build_implementations(spec, keys)
    rows, notes = measure(spec, impls, schedule, args, e2e_keys)
    tables = [(spec.describe, results_table(rows, spec.batch_size, args.peak_tflops))]
    target_lines = checks(rows)
    large = args.large if args.large is not None else device.type == "cuda"
    if large:
        big = replace(
            spec, backbone="resnet50", cifar_stem=False, image_size=224,
            batch_size=args.large_batch_size,
        )  # fmt: skip
        del impls
        big_impls = build_implementations(big, [k for k in keys if k != "ours-fast-per-image"])
        big_args = argparse.Namespace(**{**vars(args), "skip": ["data", "e2e"]})
        big_rows, big_notes = measure(big, big_impls, schedule, big_args, [])
        tables.append((big.describe, results_table(big_rows, big.batch_size, args.peak_tflops)))
        notes += [f"{big.backbone}: {n}" for n in big_notes]
    notes += [
        "ratios: to the fastest peer in the same column; (b) is shared by rows with the same "
        "pipeline; the per-image row reuses the bf16 step's (a)",
        "ours: LARS (build_optimizer), training_step; lightly: its BYOL example (SGD); "
        "byol-pytorch: README usage (Adam, package defaults, its own in-forward augmentation, "
        "not the paper's views)",
    ]
    info = machine_info(device, args.threads)
    body = section_body(info, spec, schedule, tables, target_lines + notes)
    print(body)
    if not args.no_write:
        stamp = dict(info)["date (UTC)"]
        output = args.output or RESULTS_DIR / f"{stamp[:10]}-speed-{device.type}" / "README.md"
        mode = "quick" if args.quick else "full"
        write_section(output, f"{stamp} UTC, {device.type}, {mode}", body)
        log(f"appended to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
