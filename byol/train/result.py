"""What a finished (or already finished) training run hands back to its caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainResult:
    """What a finished run leaves: its folder, last checkpoint, and last figures.

    ``num_images``: images trained on (unreadable files excluded); ``skipped_images``: the file
    listing those left out (``run_dir/skipped_images.txt``), None when every file was read.
    ``skipped_steps``: steps skipped for a non-finite loss (``train.nonfinite=skip``) in the
    whole run, resumes included. ``already_finished``: ``--resume`` found the run complete and
    did nothing. ``baselines``: k-NN top-1 of ``raw_pixels`` and ``random_encoder`` on the
    validation split (empty without one), to read ``knn_top1`` against.
    ``online_test_top1``: the online classifier's top-1 on that split at the last evaluation.
    ``linear_probe``: with ``monitor.final_linear_probe``, the fast linear probe's top-1 of the
    ``encoder``, the ``raw_pixels`` and the ``random_encoder`` on that split;
    ``linear_probe_few_labels`` the same with ``monitor.final_linear_probe_labels_per_class``
    labelled images per class.
    ``is_global_zero``: False in the other processes of a multi-process run, which should stay
    quiet.
    """

    run_dir: Path
    checkpoint: Path
    steps: int
    final_loss: float
    knn_top1: float | None
    collapsed: bool
    num_images: int = 0
    skipped_images: Path | None = None
    skipped_steps: int = 0
    already_finished: bool = False
    is_global_zero: bool = True
    baselines: Mapping[str, float] = field(default_factory=dict)
    online_test_top1: float | None = None
    linear_probe: Mapping[str, float] = field(default_factory=dict)
    linear_probe_few_labels: Mapping[str, float] = field(default_factory=dict)
