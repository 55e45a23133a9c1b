"""The training engine: BYOL pre-training on Lightning Fabric.

Fabric launches the processes and wraps the model (CPU, one GPU, or DDP over several GPUs and
machines), handles mixed precision, and reduces across ranks; everything BYOL-specific stays
in :func:`byol.train.step.training_step`. Read top to bottom: run folder, data, model,
optimiser, resume, loop.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from lightning.fabric import Fabric
from torch import nn
from tqdm.auto import tqdm

from byol.checkpoint import read_checkpoint, save_checkpoint
from byol.config import Config
from byol.config_io import apply_mapping, save_config, to_dict
from byol.eval.monitors import CollapseDetector, effective_rank, projection_std
from byol.eval.report import write_report
from byol.model import BYOL, build_model
from byol.optim import build_optimizer
from byol.schedules import learning_rate, target_tau
from byol.train.run_dir import prepare_run_folder
from byol.train.run_log import RunLog
from byol.train.step import training_step
from byol.train.validation import KNNValidator
from byol.train.views import build_view_source, training_source


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (non-finite loss, collapse); the message says why."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished run leaves: its folder, last checkpoint, and last figures."""

    run_dir: Path
    checkpoint: Path
    steps: int
    final_loss: float
    knn_top1: float | None
    collapsed: bool


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
    return Fabric(
        accelerator=config.train.accelerator,
        devices=devices,
        num_nodes=config.train.num_nodes,
        strategy=config.train.strategy,
        precision=resolve_precision(config),  # type: ignore[arg-type]
    )


def train(config: Config, resume: str | Path | None = None, progress: bool = True) -> TrainResult:
    """Pre-train an encoder with BYOL as ``config`` says; ``resume`` continues a run folder."""
    # ---- resume: the saved configuration wins, so the continued run is the same run ----
    state: dict[str, Any] | None = None
    if resume is not None:
        state = read_checkpoint(resume)
        config = apply_mapping(Config(), state["config"])
    # Resolve the data first: a wrong path fails before any process or device is set up.
    source = training_source(config)
    fabric = build_fabric(config)
    fabric.launch()
    fabric.seed_everything(config.train.seed, verbose=False)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    folder = prepare_run_folder(config, resume, fabric.is_global_zero)
    if fabric.is_global_zero:
        save_config(config, folder.path / "config.yaml")

    # ---- data: two augmented views per image, on the training device ----
    views = build_view_source(config, fabric, source)
    if views.steps_per_epoch < 1:
        raise ValueError(
            f"batch size {config.optim.batch_size} is larger than the {views.num_images} training "
            "images; lower optim.batch_size"
        )
    total_steps = config.train.epochs * views.steps_per_epoch
    if config.train.max_steps is not None:
        total_steps = min(total_steps, config.train.max_steps)
    warmup_steps = round(config.optim.warmup_epochs * views.steps_per_epoch)

    # ---- model and optimiser ----
    model = build_model(config.model)
    if fabric.world_size > 1 and config.model.sync_batchnorm:
        # BatchNorm over the global batch, as the official code ([official] configs/byol.py:47-56).
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.online, config.optim)
    # Compile before Fabric wraps it (Lightning's documented order); state dicts come from `model`.
    compiled = cast(nn.Module, torch.compile(model)) if config.train.compile else model
    forward, optimizer = fabric.setup(compiled, optimizer)
    byol: BYOL = model  # Fabric moved it in place; updates go to the unwrapped module

    step, epoch, batch_in_epoch = 0, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]

    def checkpoint_state() -> dict[str, Any]:
        return {
            "config": to_dict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
        }

    def save(name: str) -> Path:
        path = folder.checkpoints / name
        if fabric.is_global_zero:
            save_checkpoint(checkpoint_state(), path)
            if name != "last.pt":
                save_checkpoint(checkpoint_state(), folder.checkpoints / "last.pt")
        fabric.barrier()
        return path

    # ---- loop ----
    log = RunLog(folder.path) if fabric.is_global_zero else None
    validator = (
        KNNValidator(config, fabric.device, fabric.is_global_zero)
        if config.monitor.knn_every_epochs > 0
        else None
    )
    detector = CollapseDetector(config.model.projection_dim, config.monitor.collapse_std_threshold)
    global_batch = views.batch_size * fabric.world_size
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not (progress and fabric.is_global_zero),
        desc="BYOL",
        unit="step",
        dynamic_ncols=True,
    )
    loss_sum = torch.zeros((), device=fabric.device)
    steps_in_window, window_start = 0, time.perf_counter()
    last_loss, knn_top1, collapsed = math.nan, None, False

    while step < total_steps:
        for view_1, view_2 in views.epoch_batches(epoch, batch_in_epoch):
            tau = target_tau(step, total_steps, config.target.tau_base)
            lr = learning_rate(
                step, total_steps, warmup_steps, config.optim.base_learning_rate, global_batch
            )
            output = training_step(
                forward,
                byol,
                optimizer,
                view_1,
                view_2,
                lr,
                tau,
                backward=fabric.backward,
            )
            loss_sum += output.loss.detach()
            step += 1
            batch_in_epoch += 1
            steps_in_window += 1
            if step % config.train.log_every_steps == 0 or step == total_steps:
                # The one host synchronisation of a logging window.
                reduced = fabric.all_reduce(loss_sum, reduce_op="mean")
                loss_mean = float(cast(torch.Tensor, reduced)) / steps_in_window
                z = output.online_projection_1.detach()
                std, rank = float(projection_std(z)), float(effective_rank(z))
                elapsed = time.perf_counter() - window_start
                rate = steps_in_window * global_batch / max(elapsed, 1e-9)
                row = {
                    "step": step,
                    "epoch": epoch,
                    "loss": loss_mean,
                    "lr": lr,
                    "tau": tau,
                    "projection_std": std,
                    "effective_rank": rank,
                    "images_per_second": rate,
                }
                if log is not None:
                    log.write(row)
                bar.set_postfix(
                    loss=f"{loss_mean:.4f}",
                    lr=f"{lr:.3g}",
                    tau=f"{tau:.4f}",
                    img_s=f"{rate:.0f}",
                    std=f"{std:.3f}",
                )
                bar.update(steps_in_window)
                last_loss = loss_mean
                if not math.isfinite(loss_mean):
                    raise TrainingStopped(
                        f"loss became {loss_mean} by step {step} (logged every "
                        f"{config.train.log_every_steps} steps); the last good checkpoint is in "
                        f"{folder.checkpoints}. Lower optim.base_learning_rate or use "
                        "train.precision=32-true"
                    )
                report = detector.update(step, std, rank)
                if report.message:
                    collapsed = True
                    warnings.warn(report.message, stacklevel=1)
                    if config.monitor.stop_on_collapse:
                        save("collapsed.pt")
                        raise TrainingStopped(report.message)
                loss_sum.zero_()
                steps_in_window, window_start = 0, time.perf_counter()
            if step >= total_steps:
                break
        else:
            epoch, batch_in_epoch = epoch + 1, 0
            if validator is not None and epoch % config.monitor.knn_every_epochs == 0:
                result = validator.evaluate(byol.online.encoder)
                knn_top1 = result.top1 if result is not None else None
                if log is not None and result is not None:
                    log.write(
                        {
                            "step": step,
                            "epoch": epoch,
                            "knn_top1": result.top1,
                            "knn_top5": result.top5,
                        }
                    )
                    bar.write(
                        f"epoch {epoch}: k-NN top-1 {result.top1:.2%}, top-5 {result.top5:.2%}"
                    )
            if epoch % config.train.checkpoint_every_epochs == 0:
                save(f"epoch-{epoch:04d}.pt")
            continue
        break
    bar.close()
    final = save("final.pt")
    if validator is not None and (knn_top1 is None or epoch % config.monitor.knn_every_epochs):
        result = validator.evaluate(byol.online.encoder)
        if result is not None:
            knn_top1 = result.top1
            if log is not None:
                log.write(
                    {"step": step, "epoch": epoch, "knn_top1": result.top1, "knn_top5": result.top5}
                )
    if log is not None:
        log.close()
        if validator is not None:
            validator.save_retrieval(folder.path / "retrieval.npz")
        write_report(folder.path)
    return TrainResult(folder.path, final, step, last_loss, knn_top1, collapsed)
