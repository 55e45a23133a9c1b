"""Timers that interleave implementations, so load from other processes hits all of them.

* :class:`StepTimer`: the train step alone, one step per implementation in turn
  (A B C A B C ...); the figure is batch / median step time.
* :func:`time_blocks`: a data pipeline (optionally with the step: end to end) in blocks, one
  block per implementation in turn; each block starts its own iterator (fresh DataLoader
  workers), runs warm-up batches, then times a run of batches as a whole (queues and worker
  overlap make single-batch times meaningless); the figure is the median over rounds.

The caller interleaves them: step rounds, a round of blocks, step rounds, ... so that a
change of machine load (other processes) shifts every figure alike.
* :func:`step_flops`: FLOPs of one train step (matmuls and convolutions, forward and
  backward) from :class:`torch.utils.flop_counter.FlopCounterMode`.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.speed.common import Batch, BenchSpec, DataSource, Implementation, Stream
from byol.model import BYOLOutput

Log = Callable[[str], None]


def autocast_forward(
    forward: Callable[[torch.Tensor, torch.Tensor], BYOLOutput], dtype: torch.dtype
) -> Callable[[torch.Tensor, torch.Tensor], BYOLOutput]:
    """``forward`` run under autocast in ``dtype`` (the engine leaves precision to Fabric)."""

    def run(view_1: torch.Tensor, view_2: torch.Tensor) -> BYOLOutput:
        with torch.autocast(view_1.device.type, dtype=dtype):
            return forward(view_1, view_2)

    return run


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA), so host timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Measured durations of one implementation: ``seconds`` per step or per block."""

    seconds: list[float] = field(default_factory=list)
    images: list[int] = field(default_factory=list)

    def images_per_second(self) -> float | None:
        """Median over samples of images / seconds; None without samples."""
        if not self.seconds:
            return None
        return statistics.median(n / s for n, s in zip(self.images, self.seconds, strict=True))


class StepTimer:
    """Alternates single train steps over ``implementations`` (A B C A B C ...).

    Call :meth:`rounds` several times (warm-up first, then timed groups interleaved with the
    data and end-to-end blocks, so every figure spans the same stretch of machine load);
    ``results`` accumulates the timed step durations.
    """

    def __init__(
        self, implementations: Sequence[Implementation], spec: BenchSpec, log: Log = print
    ) -> None:
        self.implementations = list(implementations)
        self.spec = spec
        self.log = log
        self.batches = {impl.key: impl.synthetic() for impl in self.implementations}
        self.results = {impl.key: Timings() for impl in self.implementations}
        self.done = 0

    def rounds(self, count: int, warmup: bool = False) -> None:
        """Run ``count`` rounds of one step per implementation."""
        for _ in range(count):
            self.done += 1
            for impl in self.implementations:
                synchronize(self.spec.device)
                start = time.perf_counter()
                impl.step(self.batches[impl.key])
                synchronize(self.spec.device)
                seconds = time.perf_counter() - start
                kind = "warm-up" if warmup else "timed"
                self.log(f"  step {impl.key:<24} round {self.done} ({kind}): {seconds:.3f} s")
                if not warmup:
                    self.results[impl.key].seconds.append(seconds)
                    self.results[impl.key].images.append(self.spec.batch_size)


def _close(iterator: Iterator[Batch]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
    gc.collect()  # DataLoader workers of the closed iterator exit now, not at some later point


def time_block(
    stream: Stream,
    source: DataSource,
    spec: BenchSpec,
    warmup: int,
    timed: int,
    step: Callable[[Batch], None] | None = None,
) -> float:
    """Seconds for ``timed`` batches (each fed to ``step`` when given) after ``warmup`` ones."""
    iterator = stream(source)
    try:
        for _ in range(warmup):
            batch = next(iterator)
            if step is not None:
                step(batch)
        synchronize(spec.device)
        start = time.perf_counter()
        for _ in range(timed):
            batch = next(iterator)
            if step is not None:
                step(batch)
        synchronize(spec.device)
        return time.perf_counter() - start
    finally:
        _close(iterator)


def time_blocks(
    implementations: Sequence[Implementation],
    spec: BenchSpec,
    source: DataSource,
    end_to_end: bool,
    warmup: int,
    timed: int,
    results: dict[str, Timings],
    log: Log = print,
) -> None:
    """One round: a block per implementation, the data pipeline alone or end to end; the
    block's images/s is added to ``results[key]``."""
    what = "end to end" if end_to_end else "data"
    for impl in implementations:
        if end_to_end:
            pair = impl.end_to_end()
            if pair is None:
                continue
            stream, step = pair
        else:
            if impl.data_stream is None:
                continue
            stream, step = impl.data_stream, None
        seconds = time_block(stream, source, spec, warmup, timed, step)
        timings = results.setdefault(impl.key, Timings())
        timings.seconds.append(seconds)
        timings.images.append(timed * spec.batch_size)
        log(f"  {what} {impl.key:<24}: {timed * spec.batch_size / seconds:.1f} images/s")


def step_flops(impl: Implementation, spec: BenchSpec, sample: int = 8) -> float:
    """FLOPs of one train step at ``spec.batch_size``, counted on ``sample`` images and scaled.

    Convolution and matmul FLOPs are linear in the batch, so counting a small slice of the
    synthetic batch and scaling is exact for them (norms, activations and the optimiser are
    not counted, as usual for MFU). Runs one extra optimiser step on the implementation.
    """
    sample = max(2, min(sample, spec.batch_size))
    batch = tuple(t[:sample] for t in impl.synthetic())
    with FlopCounterMode(display=False) as counter:
        impl.step(batch)
    synchronize(spec.device)
    return float(counter.get_total_flops()) * spec.batch_size / sample
