"""The training loop of one run, in its locked folder: read it top to bottom.

:meth:`Trainer.fit` sets the run up (model and optimiser on Fabric, a resumed state, the online
classifier, logs and monitors), then runs epoch after epoch: each step is
:func:`byol.train.step.training_step` with the scheduled learning rate and tau; every
``train.log_every_steps`` a log window is read back (the one host synchronisation), logged and
shown; at the end of an epoch the encoder is evaluated and a checkpoint written. The run ends
with ``final.pt``, the last evaluation, the baselines and the report.

Checkpoints are written to ``checkpoints/last.pt`` first, then copied to their own name, and
only when the whole state is finite. Since batches and augmentations are functions of
(seed, epoch, batch), a resumed run ends with the weights an uninterrupted one would have.
"""

from __future__ import annotations

import math
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from lightning_fabric import Fabric
from torch import nn

from byol.config import Config
from byol.config_io import to_dict
from byol.distributed import convert_sync_batchnorm
from byol.eval.monitors import CollapseDetector, effective_rank, projection_std
from byol.eval.online_classifier import OnlineClassifier
from byol.eval.validation import KNNValidator
from byol.model import BYOL
from byol.optim import build_optimizer
from byol.schedules import TrainingSchedule
from byol.train.errors import TrainingStopped
from byol.train.fabric import training_precision
from byol.train.loss_window import LossWindow, WindowStats, state_is_finite
from byol.train.progress import ProgressDisplay, WindowFigures
from byol.train.result import TrainResult
from byol.train.run_dir import ResumedRun, RunFolder, restore_epoch_checkpoint, save_run_checkpoint
from byol.train.run_files import RunFiles, nonfinite_message
from byol.train.run_log import RunLog
from byol.train.state import TrainState, load_training_state
from byol.train.step import StepHooks, StepResult, training_step
from byol.train.views import ViewBatch, ViewSource


@dataclass(frozen=True)
class RunData:
    """The training data of a run: its views and the identity checkpoints record."""

    views: ViewSource
    identity: dict[str, Any]


def run_schedule(config: Config, steps_per_epoch: int) -> TrainingSchedule:
    """The run's schedules: ``train.epochs`` (capped by ``train.max_steps``) of
    ``steps_per_epoch`` steps, warm-up ``optim.warmup_epochs``, global ``optim.batch_size``."""
    total_steps = config.train.epochs * steps_per_epoch
    if config.train.max_steps is not None:
        total_steps = min(total_steps, config.train.max_steps)
    return TrainingSchedule(
        total_steps=total_steps,
        warmup_steps=round(config.optim.warmup_epochs * steps_per_epoch),
        base_learning_rate=config.optim.base_learning_rate,
        batch_size=config.optim.batch_size,
        tau_base=config.target.tau_base,
    )


class Trainer:
    """Runs BYOL pre-training of ``model`` on ``data`` in ``folder`` as ``config`` says."""

    def __init__(
        self, config: Config, fabric: Fabric, folder: RunFolder, data: RunData, model: BYOL
    ) -> None:
        self.config, self.fabric, self.folder, self.data = config, fabric, folder, data
        self.model = model  # the unwrapped module: state dicts and target updates go here
        self.schedule = run_schedule(config, data.views.steps_per_epoch)
        self.state = TrainState()
        self.files = RunFiles(folder.path, fabric.is_global_zero)
        self.skip_nonfinite = config.train.nonfinite == "skip"
        # The run's figures so far, as the result reports them.
        self.last_loss, self.collapsed, self.skipped_steps = math.nan, False, 0
        self.knn_top1: float | None = None
        self.online_top1: float | None = None
        self.baselines: dict[str, float] = {}
        self.linear_probe: dict[str, float] = {}
        self.linear_probe_few_labels: dict[str, float] = {}

    # ---- the run ----
    def fit(self, resumed: ResumedRun | None, progress: bool) -> TrainResult:
        """Train to the end of the schedule (or do nothing for a finished run)."""
        self.files.start(self.config, resumed, self.data.views.skipped)
        saved = resumed.state if resumed is not None else None
        if saved is not None:
            self.state = TrainState.from_checkpoint(saved)
            final = self.folder.checkpoints / "final.pt"
            if self.state.step >= self.schedule.total_steps and final.is_file():
                return self.result(final, already_finished=True)
        self.setup(resumed, progress)
        self.folder.started = True
        for epoch in range(self.state.epoch, self.state.epoch + self.epochs_left()):
            self.run_epoch(epoch)
            if self.done:
                break
            self.end_epoch(epoch)
        return self.finish()

    @property
    def done(self) -> bool:
        return self.state.step >= self.schedule.total_steps

    def epochs_left(self) -> int:
        """Epochs (the current one included) the remaining steps reach into."""
        steps_per_epoch = self.data.views.steps_per_epoch
        remaining = self.schedule.total_steps - self.state.step
        if remaining <= 0:
            return 0
        return math.ceil((remaining + self.state.batch_in_epoch) / steps_per_epoch)

    def setup(self, resumed: ResumedRun | None, progress: bool) -> None:
        """Model and optimiser on Fabric, the resumed state, the monitors of the run."""
        config, fabric = self.config, self.fabric
        model = self.model
        if fabric.world_size > 1 and config.model.sync_batchnorm:
            # BatchNorm over the global batch, as the official code ([official] configs/byol.py:47-56).
            model = cast(BYOL, convert_sync_batchnorm(model, fabric.device.type))
        if config.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model.online, config.optim)
        # Compile before Fabric wraps it (Lightning's documented order).
        compiled = cast(nn.Module, torch.compile(model)) if config.train.compile else model
        self.forward, self.optimizer = fabric.setup(compiled, optimizer)
        self.model = model  # Fabric moved it in place
        saved = resumed.state if resumed is not None else None
        if resumed is not None and saved is not None:
            load_training_state(model, self.optimizer, saved, config.model.backbone, resumed.origin)
            if fabric.is_global_zero:
                restore_epoch_checkpoint(self.folder, resumed, config.train.checkpoint_every_epochs)
            self.state.saved_step = self.state.step
        self.hooks = StepHooks(
            forward=self.forward,
            backward=fabric.backward,
            no_backward_sync=self.no_backward_sync,
            accumulation_steps=config.optim.gradient_accumulation_steps,
            skip_nonfinite=self.skip_nonfinite,
            # fp16 loss scaling skips steps with overflowing gradients itself and must see them.
            check_gradients=training_precision(config.train) != "16-mixed",
        )
        self.online = self.build_online_classifier(saved)
        self.losses = LossWindow(fabric.device, saved.get("nonfinite_skipped", 0) if saved else 0)
        self.skipped_steps = self.losses.skipped()
        self.log = (
            RunLog(self.folder.path, resume_step=None if resumed is None else resumed.step)
            if fabric.is_global_zero
            else None
        )
        self.validator = (
            KNNValidator(config, fabric.device, fabric.is_global_zero)
            if config.monitor.knn_every_epochs > 0
            else None
        )
        monitor = config.monitor
        self.detector = CollapseDetector(
            config.model.projection_dim, monitor.collapse_std_threshold
        )
        self.display = ProgressDisplay(
            self.schedule.total_steps,
            self.state.step,
            progress and fabric.is_global_zero,
            config.model.projection_dim,
        )

    def no_backward_sync(self, skip: bool) -> AbstractContextManager[Any]:
        return self.fabric.no_backward_sync(self.forward, enabled=skip)

    def build_online_classifier(self, saved: dict[str, Any] | None) -> OnlineClassifier | None:
        """The online linear classifier when ``monitor.online_classifier`` is on and the images
        carry 2 or more classes; in a multi-process run its gradients are reduced by DDP."""
        num_classes = self.data.views.num_classes
        if not self.config.monitor.online_classifier or num_classes < 2:
            return None
        online = OnlineClassifier(self.model.feature_dim, num_classes, self.fabric.device)
        if self.fabric.world_size > 1:
            online.linear, online.optimizer = self.fabric.setup(online.linear, online.optimizer)
        if saved is not None and "online_classifier" in saved:
            online.load_state_dict(saved["online_classifier"])
        return online

    def run_epoch(self, epoch: int) -> None:
        """The steps of ``epoch`` from ``state.batch_in_epoch`` on, until the epoch or the run
        ends; logs every ``train.log_every_steps``, checkpoints every
        ``train.checkpoint_every_steps`` inside the epoch."""
        every_steps = self.config.train.checkpoint_every_steps
        for batch in self.data.views.epoch_batches(epoch, self.state.batch_in_epoch):
            result = self.train_step(batch)
            if self.state.step % self.config.train.log_every_steps == 0 or self.done:
                self.log_window(result)
            if self.done:
                return
            inside_epoch = self.state.batch_in_epoch < self.data.views.steps_per_epoch
            if every_steps and self.state.step % every_steps == 0 and inside_epoch:
                self.save("last.pt")  # at the epoch's end the epoch checkpoint follows

    def train_step(self, batch: ViewBatch) -> StepResult:
        """One optimisation step (and one online-classifier step) on ``batch``."""
        step = self.state.step
        learning_rate, tau = self.schedule.learning_rate(step), self.schedule.tau(step)
        views = (batch.view_1, batch.view_2)
        result = training_step(self.model, self.optimizer, views, learning_rate, tau, self.hooks)
        if self.online is not None and batch.labels is not None:
            self.online.step(result.output.online_representation_1, batch.labels)
        self.state.step += 1
        self.state.batch_in_epoch += 1
        self.losses.add(self.state.step, result.output.loss, result.applied)
        return result

    def log_window(self, result: StepResult) -> None:
        """Read the window's losses back (the one host synchronisation of a window), stop on a
        non-finite loss, log and show the window, and watch for collapse."""
        window = self.losses.read(self.all_reduce_sum if self.fabric.world_size > 1 else None)
        if not self.skip_nonfinite and not math.isfinite(window.loss):
            raise TrainingStopped(self.nonfinite_message(window.first_nonfinite))
        projection = result.output.online_projection_1.detach()
        std, rank = float(projection_std(projection)), float(effective_rank(projection))
        figures = self.window_figures(window, std)
        row: dict[str, float | int] = {
            "step": figures.step,
            "epoch": self.state.epoch,
            "loss": figures.loss,
            "lr": figures.learning_rate,
            "tau": figures.tau,
            "projection_std": std,
            "effective_rank": rank,
            "images_per_second": figures.images_per_second,
        }
        if self.skip_nonfinite:
            row["nonfinite_skipped"] = window.skipped
            self.note_skipped_steps(window.skipped)
        if self.log is not None:
            self.log.write(row)
        slow = self.display.update(figures, self.skipped_steps if self.skip_nonfinite else None)
        if slow is not None and self.fabric.is_global_zero:
            warnings.warn(slow, stacklevel=1)
        self.last_loss = window.loss
        self.check_collapse(std, rank)
        self.losses.reset()

    def window_figures(self, window: WindowStats, projection_std: float) -> WindowFigures:
        """The figures of a window ending at the current step (schedules of its last step)."""
        last = self.state.step - 1
        seconds = max(window.seconds, 1e-9)
        return WindowFigures(
            step=self.state.step,
            steps=window.steps,
            loss=window.loss,
            learning_rate=self.schedule.learning_rate(last),
            tau=self.schedule.tau(last),
            images_per_second=window.steps * self.schedule.batch_size / seconds,
            projection_std=projection_std,
        )

    def note_skipped_steps(self, skipped: int) -> None:
        if skipped > self.skipped_steps:
            self.display.write(
                f"step {self.state.step}: skipped {skipped - self.skipped_steps} steps with a "
                f"non-finite loss or gradient ({skipped} in all)"
            )
        self.skipped_steps = skipped

    def check_collapse(self, std: float, rank: float) -> None:
        report = self.detector.update(self.state.step, std, rank)
        if not report.message:
            return
        self.collapsed = True
        warnings.warn(report.message, stacklevel=1)
        if self.config.monitor.stop_on_collapse:
            self.save("collapsed.pt")
            raise TrainingStopped(report.message)

    def end_epoch(self, epoch: int) -> None:
        """Count the epoch, evaluate the encoder when due, write the epoch's checkpoint."""
        self.state.epoch, self.state.batch_in_epoch = epoch + 1, 0
        finished = self.state.epoch
        self.log_online_training_accuracy()
        knn_every = self.config.monitor.knn_every_epochs
        if self.validator is not None and finished % knn_every == 0:
            self.evaluate(self.validator)
            if self.knn_top1 is not None:
                self.display.write(f"epoch {finished}: k-NN top-1 {self.knn_top1:.2%}")
        every_steps = self.config.train.checkpoint_every_steps
        if finished % self.config.train.checkpoint_every_epochs == 0:
            self.save(f"epoch-{finished:04d}.pt")
        elif every_steps and self.state.step % every_steps == 0:
            self.save("last.pt")

    def finish(self) -> TrainResult:
        """``final.pt``, the final weights evaluated, the run's files written."""
        self.display.close()
        final = self.save("final.pt")
        # The loop leaves on the last step, before its epoch is counted.
        if self.state.batch_in_epoch == self.data.views.steps_per_epoch:
            self.state.epoch += 1
        self.log_online_training_accuracy()
        if self.validator is not None:
            self.evaluate(self.validator)
        if self.log is not None:
            self.log.close()
            if self.validator is not None:
                self.baselines = self.files.write_evaluation(self.validator)
                if self.config.monitor.final_linear_probe:
                    self.final_linear_probes(self.validator)
            self.files.write_summary(
                self.config.data.source,
                self.data.views.num_images,
                self.state,
                self.collapsed,
            )
            self.files.write_report()
        return self.result(final)

    # ---- evaluation ----
    def final_linear_probes(self, validator: KNNValidator) -> None:
        """The fast linear probe on all labels and, where asked, on a few per class."""
        encoder = self.model.online.encoder
        self.linear_probe = self.files.write_linear_probes(validator, encoder)
        few = self.config.monitor.final_linear_probe_labels_per_class
        if few is not None:
            self.linear_probe_few_labels = self.files.write_linear_probes(validator, encoder, few)

    def log_online_training_accuracy(self) -> None:
        """The online classifier's accuracy on the epoch's training views (one host read)."""
        if self.online is None:
            return
        train_top1 = self.online.read_train_accuracy()
        if self.log is not None:
            row = {
                "step": self.state.step,
                "epoch": self.state.epoch,
                "online_train_top1": train_top1,
            }
            self.log.write(row)

    def evaluate(self, validator: KNNValidator) -> None:
        """k-NN of the online encoder and the online classifier's accuracy on the validation
        split, logged as one row (measured on rank 0 only)."""
        knn = validator.evaluate(self.model.online.encoder)
        queries = validator.last_query_features
        if knn is None or queries is None:
            self.knn_top1, self.online_top1 = None, None
            return
        row: dict[str, float | int] = {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "knn_top1": knn.top1,
            "knn_top5": knn.top5,
        }
        self.knn_top1, self.online_top1 = knn.top1, None
        if self.online is not None:
            self.online_top1, online_top5 = self.online.accuracy(queries.features, queries.labels)
            row.update(online_test_top1=self.online_top1, online_test_top5=online_top5)
        if self.log is not None:
            self.log.write(row)

    # ---- checkpoints ----
    def save(self, name: str) -> Path:
        """Write ``last.pt``, then its copy ``name``; never a state with non-finite values."""
        first_nonfinite = None if self.skip_nonfinite else self.losses.first_nonfinite()
        if first_nonfinite is not None or not state_is_finite(self.model, self.optimizer):
            raise TrainingStopped(self.nonfinite_message(first_nonfinite))
        if self.fabric.is_global_zero:
            save_run_checkpoint(self.checkpoint_state(), self.folder, name)
        self.fabric.barrier()
        self.state.saved_step = self.state.step
        return self.folder.checkpoints / name

    def checkpoint_state(self) -> dict[str, Any]:
        online = {"online_classifier": self.online.state_dict()} if self.online else {}
        return {
            "config": to_dict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self.state.position(),
            "nonfinite_skipped": self.losses.skipped(),
            "data": self.data.identity,
            **online,
        }

    def nonfinite_message(self, first_step: int | None) -> str:
        return nonfinite_message(
            first_step,
            self.state.step,
            self.config.train,
            self.folder.checkpoints / "last.pt",
            self.state.saved_step,
        )

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.fabric.all_reduce(tensor, reduce_op="sum"))

    def result(self, checkpoint: Path, already_finished: bool = False) -> TrainResult:
        """What the run leaves, for the caller."""
        return TrainResult(
            run_dir=self.folder.path,
            checkpoint=checkpoint,
            steps=self.state.step,
            final_loss=self.last_loss,
            knn_top1=self.knn_top1,
            collapsed=self.collapsed,
            num_images=self.data.views.num_images,
            skipped_images=self.files.skipped_images,
            skipped_steps=self.skipped_steps,
            already_finished=already_finished,
            is_global_zero=self.fabric.is_global_zero,
            baselines=self.baselines,
            online_test_top1=self.online_top1,
            linear_probe=self.linear_probe,
            linear_probe_few_labels=self.linear_probe_few_labels,
        )
