"""The training engine: BYOL pre-training on Lightning Fabric.

Fabric launches the processes and wraps the model (CPU, one GPU, or DDP over several GPUs and
machines), handles mixed precision, and reduces across ranks; everything BYOL-specific stays
in :func:`byol.train.step.training_step`. Read top to bottom: run folder, data, model,
optimiser, resume, loop.

Crash safety: every checkpoint is written to ``checkpoints/last.pt`` first (atomically, see
:func:`byol.checkpoint.save_checkpoint`), then copied to its own name, so ``last.pt`` is
always the newest complete checkpoint; with ``train.checkpoint_every_steps`` it is refreshed
inside epochs too. A checkpoint is written only when the state is finite. Resuming continues
from ``last.pt`` and, since batches and augmentations are functions of (seed, epoch, batch),
ends with the weights an uninterrupted run would have (``train.deterministic``).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from lightning_fabric import Fabric
from torch import nn
from torch.optim import Optimizer
from tqdm.auto import tqdm

from byol.atomic import write_text
from byol.checkpoint import CheckpointError, copy_checkpoint, save_checkpoint
from byol.config import Config
from byol.config_check import validate_config
from byol.config_io import save_config, to_dict
from byol.data.identity import data_difference, data_identity
from byol.distributed import convert_sync_batchnorm
from byol.eval.monitors import CollapseDetector, effective_rank, projection_std
from byol.eval.online_classifier import OnlineClassifier
from byol.eval.report import write_report
from byol.eval.validation import KNNValidator
from byol.export.checkpoint import check_weights_fit
from byol.model import BYOL, build_model
from byol.optim import build_optimizer
from byol.schedules import learning_rate, target_tau
from byol.train.errors import TrainingStopped
from byol.train.loss_window import LossWindow, state_is_finite
from byol.train.progress import (
    ThroughputWatch,
    progress_line,
    progress_lines_wanted,
    proj_std_help,
    quiet_amp_notice,
    resolve_num_threads,
)
from byol.train.run_dir import (
    ResumedRun,
    RunFolder,
    apply_resume_overrides,
    load_resumed_run,
    prepare_run_folder,
    restore_epoch_checkpoint,
    write_skipped_images,
)
from byol.train.run_log import RunLog
from byol.train.step import check_gradient_accumulation, training_step
from byol.train.views import ViewSource, build_view_source, training_source


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


def resolve_precision(config: Config) -> str:
    """``auto`` -> bf16 autocast on CUDA GPUs and CPUs with native bf16, else float32."""
    requested = config.train.precision
    if requested != "auto":
        return requested
    accelerator = config.train.accelerator
    use_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if use_cuda:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if _cpu_has_native_bf16() else "32-true"


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_fabric(config: Config) -> Fabric:
    """A Fabric for ``config.train`` (accelerator, devices, nodes, strategy, precision)."""
    devices: Any = config.train.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    quiet_amp_notice()
    return Fabric(
        accelerator=config.train.accelerator,
        devices=devices,
        num_nodes=config.train.num_nodes,
        strategy=config.train.strategy,
        precision=resolve_precision(config),  # type: ignore[arg-type]
    )


def train(
    config: Config,
    resume: str | Path | None = None,
    progress: bool = True,
    resume_overrides: Mapping[str, Any] | None = None,
    allow_data_change: bool = False,
) -> TrainResult:
    """Pre-train an encoder with BYOL as ``config`` says; ``resume`` continues a run folder.

    Resuming a finished run does nothing and says so (``already_finished``); a run folder
    without a checkpoint yet starts again from its ``config.yaml``; a checkpoint file outside
    a run folder starts a new run from its weights. ``resume_overrides`` (dotted keys, e.g.
    ``{"train.devices": 1}``) change how a resumed run runs, within
    :data:`~byol.train.run_dir.RESUME_OVERRIDES`: it may continue on another number of
    processes. A resume on other data than the checkpoint's (image count or fingerprint, see
    :mod:`byol.data.identity`) is refused unless ``allow_data_change``.

    Everything that can be checked (config values, data, batch size, backbone) is checked
    before the run folder is created, so a failed start leaves no folder behind.
    """
    # ---- resume: the saved configuration wins, so the continued run is the same run ----
    resumed: ResumedRun | None = None
    if resume is not None:
        resumed = load_resumed_run(resume)
        config = apply_resume_overrides(resumed.config, resume_overrides or {})
    elif resume_overrides:
        raise ValueError("resume_overrides apply to a resumed run; pass resume=RUN_DIR")
    check_train_config(config)
    torch.set_num_threads(resolve_num_threads(config.train.num_threads))
    # Resolve the data first: a wrong path fails before any process or device is set up.
    source = training_source(config, progress=progress)
    fabric = build_fabric(config)
    fabric.launch()
    fabric.seed_everything(config.train.seed, verbose=False)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    # ---- data: two augmented views per image, on the training device ----
    views = build_view_source(config, fabric, source)
    check_gradient_accumulation(config.optim.gradient_accumulation_steps, views.batch_size)
    identity = data_identity(source, views.num_images)
    if resumed is not None and resumed.state is not None:
        check_same_data(resumed.state, resumed.origin, identity, allow_data_change)
    model = build_model(config.model)  # an unknown backbone fails here, before any folder

    if resumed is not None and resumed.state is not None:  # before a new folder is made for it
        check_weights_fit(
            resumed.state["model"], model.state_dict(), config.model.backbone, resumed.origin
        )
    folder = _run_folder(config, resumed, fabric)
    try:
        result = _train_in_folder(config, fabric, folder, resumed, views, model, identity, progress)
    except BaseException:
        folder.release(failed=True)
        raise
    folder.release()
    return result


def _run_folder(config: Config, resumed: ResumedRun | None, fabric: Fabric) -> RunFolder:
    """The locked run folder on rank 0; the other processes learn its path from rank 0."""
    folder = prepare_run_folder(config, resumed, True) if fabric.is_global_zero else None
    if fabric.world_size > 1 and (resumed is None or resumed.run_dir is None):
        path = fabric.broadcast(str(folder.path) if folder is not None else None, src=0)
        if folder is None:
            folder = prepare_run_folder(config, resumed, False, Path(str(path)))
    if folder is None:
        folder = prepare_run_folder(config, resumed, False)
    return folder


def check_same_data(
    state: Mapping[str, Any], origin: str, identity: dict[str, Any], allow_change: bool
) -> None:
    """Refuse to resume on other data than the checkpoint ``state`` recorded (or warn, when
    allowed)."""
    difference = data_difference(state.get("data"), identity)
    if difference is None:
        return
    message = f"the training data {identity['source']} changed since {origin}: {difference}"
    if not allow_change:
        raise ValueError(
            f"{message}; resume on the data it was trained on, or pass --allow-data-change to "
            "continue on this data (its schedule is recomputed for the new size)"
        )
    warnings.warn(f"{message}; continuing on it (--allow-data-change)", stacklevel=2)


def _train_in_folder(
    config: Config,
    fabric: Fabric,
    folder: RunFolder,
    resumed: ResumedRun | None,
    views: ViewSource,
    model: BYOL,
    identity: dict[str, Any],
    progress: bool,
) -> TrainResult:
    """The run itself, in its (locked) folder: the loop, checkpoints, logs, the report."""
    started = time.perf_counter()
    if fabric.is_global_zero and resumed is not None and resumed.run_dir is not None:
        save_config(config, folder.path / "config.yaml")  # with the resume overrides
        if resumed.state is None:
            print(
                f"byol: {folder.path} has no checkpoint yet; starting its run again from step 0",
                file=sys.stderr,
            )
    skipped_file = write_skipped_images(folder, views.skipped) if fabric.is_global_zero else None
    total_steps = config.train.epochs * views.steps_per_epoch
    if config.train.max_steps is not None:
        total_steps = min(total_steps, config.train.max_steps)
    warmup_steps = round(config.optim.warmup_epochs * views.steps_per_epoch)
    state = resumed.state if resumed is not None else None
    step, epoch, batch_in_epoch = 0, 0, 0
    if state is not None:  # continue where the checkpoint left off, unless the run is done
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        final_file = folder.checkpoints / "final.pt"
        if step >= total_steps and final_file.is_file():
            return TrainResult(
                run_dir=folder.path,
                checkpoint=final_file,
                steps=step,
                final_loss=math.nan,
                knn_top1=None,
                collapsed=False,
                num_images=views.num_images,
                skipped_images=skipped_file,
                already_finished=True,
                is_global_zero=fabric.is_global_zero,
            )

    # ---- model and optimiser ----
    if fabric.world_size > 1 and config.model.sync_batchnorm:
        # BatchNorm over the global batch, as the official code ([official] configs/byol.py:47-56).
        model = cast(BYOL, convert_sync_batchnorm(model, fabric.device.type))
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.online, config.optim)
    # Compile before Fabric wraps it (Lightning's documented order); state dicts come from `model`.
    compiled = cast(nn.Module, torch.compile(model)) if config.train.compile else model
    forward, optimizer = fabric.setup(compiled, optimizer)
    byol: BYOL = model  # Fabric moved it in place; updates go to the unwrapped module
    if resumed is not None and state is not None:
        load_training_state(model, optimizer, state, config.model.backbone, resumed.origin)
        if fabric.is_global_zero:
            restore_epoch_checkpoint(folder, resumed, config.train.checkpoint_every_epochs)
    online = build_online_classifier(config, fabric, views.num_classes, model.feature_dim)
    if online is not None and state is not None and "online_classifier" in state:
        online.load_state_dict(state["online_classifier"])
    saved_step = step if state is not None else None  # the step of the newest good checkpoint

    skip_nonfinite = config.train.nonfinite == "skip"
    # fp16 loss scaling skips steps with overflowing gradients itself and must see them.
    check_gradients = resolve_precision(config) != "16-mixed"
    losses = LossWindow(fabric.device, state.get("nonfinite_skipped", 0) if state else 0)

    def checkpoint_state() -> dict[str, Any]:
        return {
            "config": to_dict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "nonfinite_skipped": losses.skipped(),
            "data": identity,
            **({"online_classifier": online.state_dict()} if online is not None else {}),
        }

    def save(name: str) -> Path:
        """Write ``last.pt``, then its copy ``name``; never a state with non-finite values."""
        nonlocal saved_step
        first_nonfinite = None if skip_nonfinite else losses.first_nonfinite()
        if first_nonfinite is not None or not state_is_finite(model, optimizer):
            raise TrainingStopped(
                nonfinite_message(first_nonfinite, step, config, folder, saved_step)
            )
        last = folder.checkpoints / "last.pt"
        if fabric.is_global_zero:
            try:
                save_checkpoint(checkpoint_state(), last)
                if name != last.name:
                    copy_checkpoint(last, folder.checkpoints / name)
            except CheckpointError as error:
                raise TrainingStopped(
                    f"{error}. Free space (or fix the folder) and continue with "
                    f"byol train --resume {folder.path}"
                ) from error
        fabric.barrier()
        saved_step = step
        return folder.checkpoints / name

    # ---- loop ----
    log = (
        RunLog(folder.path, resume_step=None if resumed is None else resumed.step)
        if fabric.is_global_zero
        else None
    )
    validator = (
        KNNValidator(config, fabric.device, fabric.is_global_zero)
        if config.monitor.knn_every_epochs > 0
        else None
    )
    detector = CollapseDetector(config.model.projection_dim, config.monitor.collapse_std_threshold)
    global_batch = views.batch_size * fabric.world_size
    every_steps = config.train.checkpoint_every_steps
    show_progress = progress and fabric.is_global_zero
    # Under a pipe or in a CI log a bar prints a line per update: one line per log step instead.
    lines = progress_lines_wanted(show_progress)
    if show_progress:
        print(proj_std_help(config.model.projection_dim), file=sys.stderr, flush=True)
    throughput = ThroughputWatch()
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not show_progress or lines,
        desc="BYOL",
        unit="step",
        dynamic_ncols=True,
    )
    last_loss, collapsed = math.nan, False
    knn_top1: float | None = None
    online_top1: float | None = None
    skipped_steps = losses.skipped()

    def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, fabric.all_reduce(tensor, reduce_op="sum"))

    folder.started = True
    while step < total_steps:
        for view_1, view_2, labels in views.epoch_batches(epoch, batch_in_epoch):
            tau = target_tau(step, total_steps, config.target.tau_base)
            lr = learning_rate(
                step, total_steps, warmup_steps, config.optim.base_learning_rate, global_batch
            )
            result = training_step(
                forward,
                byol,
                optimizer,
                view_1,
                view_2,
                lr,
                tau,
                backward=fabric.backward,
                skip_nonfinite=skip_nonfinite,
                check_gradients=check_gradients,
                accumulation_steps=config.optim.gradient_accumulation_steps,
                no_backward_sync=lambda skip: fabric.no_backward_sync(forward, enabled=skip),
            )
            if online is not None and labels is not None:
                online.step(result.output.online_representation_1, labels)
            step += 1
            batch_in_epoch += 1
            losses.add(step, result.output.loss, result.applied)
            if step % config.train.log_every_steps == 0 or step == total_steps:
                # The one host synchronisation of a logging window.
                window = losses.read(all_reduce_sum if fabric.world_size > 1 else None)
                if not skip_nonfinite and not math.isfinite(window.loss):
                    raise TrainingStopped(
                        nonfinite_message(window.first_nonfinite, step, config, folder, saved_step)
                    )
                z = result.output.online_projection_1.detach()
                std, rank = float(projection_std(z)), float(effective_rank(z))
                rate = window.steps * global_batch / max(window.seconds, 1e-9)
                row: dict[str, float | int] = {
                    "step": step,
                    "epoch": epoch,
                    "loss": window.loss,
                    "lr": lr,
                    "tau": tau,
                    "projection_std": std,
                    "effective_rank": rank,
                    "images_per_second": rate,
                }
                if skip_nonfinite:
                    row["nonfinite_skipped"] = window.skipped
                    if window.skipped > skipped_steps:
                        bar.write(
                            f"step {step}: skipped {window.skipped - skipped_steps} steps with a "
                            f"non-finite loss or gradient ({window.skipped} in all)"
                        )
                    skipped_steps = window.skipped
                if log is not None:
                    log.write(row)
                bar.set_postfix(
                    loss=f"{window.loss:.4f}",
                    lr=f"{lr:.3g}",
                    tau=f"{tau:.4f}",
                    img_s=f"{rate:.0f}",
                    proj_std=f"{std:.3f}",
                    **({"skipped": skipped_steps} if skip_nonfinite else {}),
                )
                bar.update(window.steps)
                if lines:
                    line = progress_line(step, total_steps, window.loss, lr, tau, rate, std)
                    print(line, file=sys.stderr, flush=True)
                slow = throughput.update(rate)
                if slow is not None and fabric.is_global_zero:
                    warnings.warn(slow, stacklevel=1)
                last_loss = window.loss
                report = detector.update(step, std, rank)
                if report.message:
                    collapsed = True
                    warnings.warn(report.message, stacklevel=1)
                    if config.monitor.stop_on_collapse:
                        save("collapsed.pt")
                        raise TrainingStopped(report.message)
                losses.reset()
            if step >= total_steps:
                break
            if every_steps and step % every_steps == 0 and batch_in_epoch < views.steps_per_epoch:
                save("last.pt")  # inside the epoch; at its end the epoch checkpoint follows
        else:
            epoch, batch_in_epoch = epoch + 1, 0
            log_online_training_accuracy(online, log, step, epoch)
            if validator is not None and epoch % config.monitor.knn_every_epochs == 0:
                knn_top1, online_top1 = evaluate_and_log(
                    validator, byol.online.encoder, online, log, step, epoch
                )
                if knn_top1 is not None:
                    bar.write(f"epoch {epoch}: k-NN top-1 {knn_top1:.2%}")
            if epoch % config.train.checkpoint_every_epochs == 0:
                save(f"epoch-{epoch:04d}.pt")
            elif every_steps and step % every_steps == 0:
                save("last.pt")
            continue
        break
    bar.close()
    final = save("final.pt")
    # The loop leaves on the last step, before its epoch is counted; the final weights are
    # evaluated here (the loop only evaluated earlier epochs).
    if batch_in_epoch == views.steps_per_epoch:
        epoch += 1
    log_online_training_accuracy(online, log, step, epoch)
    if validator is not None:
        knn_top1, online_top1 = evaluate_and_log(
            validator, byol.online.encoder, online, log, step, epoch
        )
    baselines: dict[str, float] = {}
    if log is not None:
        log.close()
        if validator is not None:
            validator.save_retrieval(folder.path / "retrieval.npz")
            baselines = write_baselines(validator, folder.path / "baselines.json")
        summary = {
            "data": config.data.source,
            "images": views.num_images,
            "steps": step,
            "epochs": epoch,
            "seconds": round(time.perf_counter() - started, 1),
            "collapsed": collapsed,
        }
        write_text(folder.path / "summary.json", json.dumps(summary, indent=2) + "\n")
        write_report_safely(folder.path)
    return TrainResult(
        run_dir=folder.path,
        checkpoint=final,
        steps=step,
        final_loss=last_loss,
        knn_top1=knn_top1,
        collapsed=collapsed,
        num_images=views.num_images,
        skipped_images=skipped_file,
        skipped_steps=skipped_steps,
        is_global_zero=fabric.is_global_zero,
        baselines=baselines,
        online_test_top1=online_top1,
    )


def write_baselines(validator: KNNValidator, path: Path) -> dict[str, float]:
    """k-NN of raw pixels and of a random encoder beside the run's, saved for the report as
    ``{"raw_pixels": {"top1": .., "top5": ..}, "random_encoder": {..}}``; returns the top-1s."""
    results = validator.evaluate_baselines()
    figures = {name: {"top1": r.top1, "top5": r.top5} for name, r in results.items()}
    write_text(path, json.dumps(figures, indent=2) + "\n")
    return {name: r.top1 for name, r in results.items()}


def build_online_classifier(
    config: Config, fabric: Fabric, num_classes: int, feature_dim: int
) -> OnlineClassifier | None:
    """The online linear classifier when ``monitor.online_classifier`` is on and the training
    images carry 2 or more classes; in a multi-process run its gradients are reduced by DDP."""
    if not config.monitor.online_classifier or num_classes < 2:
        return None
    online = OnlineClassifier(feature_dim, num_classes, fabric.device)
    if fabric.world_size > 1:
        online.linear, online.optimizer = fabric.setup(online.linear, online.optimizer)
    return online


def log_online_training_accuracy(
    online: OnlineClassifier | None, log: RunLog | None, step: int, epoch: int
) -> None:
    """The online classifier's accuracy on the epoch's training views (one host read)."""
    if online is None:
        return
    train_top1 = online.read_train_accuracy()
    if log is not None:
        log.write({"step": step, "epoch": epoch, "online_train_top1": train_top1})


def evaluate_and_log(
    validator: KNNValidator,
    encoder: nn.Module,
    online: OnlineClassifier | None,
    log: RunLog | None,
    step: int,
    epoch: int,
) -> tuple[float | None, float | None]:
    """k-NN of ``encoder`` and the online classifier's accuracy on the validation split,
    logged as one row; returns their top-1s (None where not measured, e.g. on other ranks)."""
    knn = validator.evaluate(encoder)
    queries = validator.last_query_features
    if knn is None or queries is None:
        return None, None
    row: dict[str, float | int] = {
        "step": step,
        "epoch": epoch,
        "knn_top1": knn.top1,
        "knn_top5": knn.top5,
    }
    online_top1 = None
    if online is not None:
        online_top1, online_top5 = online.accuracy(queries.features, queries.labels)
        row.update(online_test_top1=online_top1, online_test_top5=online_top5)
    if log is not None:
        log.write(row)
    return knn.top1, online_top1


def write_report_safely(run_dir: Path) -> Path | None:
    """Write the run's report; a failure is a warning, never the end of a finished run."""
    try:
        return write_report(run_dir)
    except Exception as error:  # the report is a by-product: the checkpoints are what count
        warnings.warn(
            f"could not write the report of {run_dir} ({type(error).__name__}: "
            f"{str(error).strip()[:200]}); run byol report {run_dir} to try again",
            stacklevel=2,
        )
        return None


def check_train_config(config: Config) -> None:
    """Raise ``ValueError`` for values in ``config`` that cannot work (e.g. 0, -1 or .nan)."""
    validate_config(config)
    counts = {
        "train.epochs": config.train.epochs,
        "train.log_every_steps": config.train.log_every_steps,
        "train.checkpoint_every_epochs": config.train.checkpoint_every_epochs,
        "train.checkpoint_every_steps": config.train.checkpoint_every_steps,
        "train.max_steps": config.train.max_steps,
        "train.num_threads": config.train.num_threads,
    }
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ValueError(f"{name}={value} must be at least 1")


def load_training_state(
    model: nn.Module, optimizer: Optimizer, state: dict[str, Any], backbone: str, origin: str
) -> None:
    """Load a checkpoint's weights and optimiser state, naming what does not fit."""
    check_weights_fit(state["model"], model.state_dict(), backbone, origin)
    model.load_state_dict(state["model"])
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{origin}: its optimizer state does not fit the configured optimizer ({error})"
        ) from error


def nonfinite_message(
    first_step: int | None, step: int, config: Config, folder: RunFolder, saved_step: int | None
) -> str:
    """Why the run stopped on a non-finite value, and what is kept."""
    if first_step is not None:
        what = (
            f"the loss became non-finite at step {first_step} (losses are read back every "
            f"{config.train.log_every_steps} steps and before each checkpoint)"
        )
    else:
        what = (
            f"a weight or optimizer state became non-finite by step {step} (checked before "
            "each checkpoint)"
        )
    kept = (
        f"the last good checkpoint ({folder.checkpoints / 'last.pt'}, step {saved_step}) is kept"
        if saved_step is not None
        else "no checkpoint was written yet"
    )
    skip = "" if config.train.nonfinite == "skip" else ", or set train.nonfinite=skip"
    return f"{what}; {kept}. Lower optim.base_learning_rate or use train.precision=32-true{skip}"
