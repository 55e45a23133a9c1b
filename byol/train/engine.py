"""The training engine's entry point: BYOL pre-training on Lightning Fabric.

Fabric launches the processes and wraps the model (CPU, one GPU, or DDP over several GPUs and
machines), handles mixed precision, and reduces across ranks. :func:`train` resolves what the
run is (a new run or a resumed one), checks everything that can be checked before a run folder
exists, and hands the run to :class:`byol.train.trainer.Trainer`, which holds the loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric

from byol.checkpoint import check_weights_fit
from byol.config import Config
from byol.config_check import validate_config
from byol.data.identity import data_difference, data_identity
from byol.model import build_model
from byol.train.fabric import build_fabric
from byol.train.progress import resolve_num_threads
from byol.train.result import TrainResult
from byol.train.run_dir import (
    ResumedRun,
    RunFolder,
    apply_resume_overrides,
    load_resumed_run,
    prepare_run_folder,
)
from byol.train.step import check_gradient_accumulation
from byol.train.trainer import RunData, Trainer
from byol.train.views import build_view_source, training_source

__all__ = ["TrainResult", "check_train_config", "train"]


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
    fabric = build_fabric(config.train)
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
        trainer = Trainer(config, fabric, folder, RunData(views, identity), model)
        result = trainer.fit(resumed, progress)
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
