"""The files a run writes beside its checkpoints and metrics: the configuration of a resumed
run, the list of skipped images, the evaluation's baselines and retrievals, the summary and
the report. Only rank 0 writes."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from torch import nn

from byol.atomic import write_text
from byol.config import Config, TrainConfig
from byol.config_io import save_config
from byol.eval.report import LINEAR_PROBE_FEW_LABELS_FILE, write_report
from byol.eval.validation import KNNValidator
from byol.train.run_dir import ResumedRun, write_skipped_images
from byol.train.state import TrainState


class RunFiles:
    """Writes the run folder's by-products; silent on ranks other than 0."""

    def __init__(self, run_dir: Path, is_global_zero: bool) -> None:
        self.run_dir = run_dir
        self.is_global_zero = is_global_zero
        self.started = time.perf_counter()
        self.skipped_images: Path | None = None

    def start(
        self, config: Config, resumed: ResumedRun | None, skipped: list[tuple[str, str]]
    ) -> None:
        """A resumed run's config (with its overrides) and the images left out."""
        if not self.is_global_zero:
            return
        if resumed is not None and resumed.run_dir is not None:
            save_config(config, self.run_dir / "config.yaml")
            if resumed.state is None:
                print(
                    f"byol: {self.run_dir} has no checkpoint yet; starting its run again from "
                    "step 0",
                    file=sys.stderr,
                )
        self.skipped_images = write_skipped_images(self.run_dir, skipped)

    def write_evaluation(self, validator: KNNValidator) -> dict[str, float]:
        """Retrieval examples and the baselines (k-NN of raw pixels and of a random encoder,
        ``{"raw_pixels": {"top1": .., "top5": ..}, "random_encoder": {..}}`` in
        ``baselines.json``); returns the baselines' top-1s."""
        validator.save_retrieval(self.run_dir / "retrieval.npz")
        results = validator.evaluate_baselines()
        figures = {name: {"top1": r.top1, "top5": r.top5} for name, r in results.items()}
        write_text(self.run_dir / "baselines.json", json.dumps(figures, indent=2) + "\n")
        return {name: r.top1 for name, r in results.items()}

    def write_linear_probes(
        self, validator: KNNValidator, encoder: nn.Module, labels_per_class: int | None = None
    ) -> dict[str, float]:
        """``linear_probe.json`` (``linear_probe_few_labels.json`` with ``labels_per_class``):
        the fast linear probe's top-1/top-5 of the encoder, the raw pixels and a random encoder
        on the validation split; returns the top-1s."""
        results = validator.linear_probes(encoder, labels_per_class)
        figures: dict[str, object] = {
            name: {"top1": r.top1, "top5": r.top5} for name, r in results.items()
        }
        name = "linear_probe.json"
        if labels_per_class is not None:
            name = LINEAR_PROBE_FEW_LABELS_FILE
            figures["labels"] = {
                "labels_per_class": labels_per_class,
                "seed": validator.config.train.seed,
            }
        write_text(self.run_dir / name, json.dumps(figures, indent=2) + "\n")
        return {name: r.top1 for name, r in results.items()}

    def write_summary(self, source: str, images: int, state: TrainState, collapsed: bool) -> None:
        """``summary.json``: data, images, steps, epochs, seconds, whether it collapsed."""
        summary = {
            "data": source,
            "images": images,
            "steps": state.step,
            "epochs": state.epoch,
            "seconds": round(time.perf_counter() - self.started, 1),
            "collapsed": collapsed,
        }
        write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")

    def write_report(self) -> Path | None:
        """The run's report; a failure is a warning, never the end of a finished run."""
        try:
            return write_report(self.run_dir)
        except Exception as error:  # the report is a by-product: the checkpoints are what count
            warnings.warn(
                f"could not write the report of {self.run_dir} ({type(error).__name__}: "
                f"{str(error).strip()[:200]}); run byol report {self.run_dir} to try again",
                stacklevel=2,
            )
            return None


def nonfinite_message(
    first_step: int | None, step: int, train: TrainConfig, last: Path, saved_step: int | None
) -> str:
    """Why the run stopped on a non-finite value, and what is kept (``last``: its last.pt)."""
    if first_step is not None:
        what = (
            f"the loss became non-finite at step {first_step} (losses are read back every "
            f"{train.log_every_steps} steps and before each checkpoint)"
        )
    else:
        what = (
            f"a weight or optimizer state became non-finite by step {step} (checked before "
            "each checkpoint)"
        )
    kept = (
        f"the last good checkpoint ({last}, step {saved_step}) is kept"
        if saved_step is not None
        else "no checkpoint was written yet"
    )
    skip = "" if train.nonfinite == "skip" else ", or set train.nonfinite=skip"
    return f"{what}; {kept}. Lower optim.base_learning_rate or use train.precision=32-true{skip}"
