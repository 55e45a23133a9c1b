"""The Lightning Fabric a run trains on: accelerator, processes, strategy and precision."""

from __future__ import annotations

from typing import Any

from lightning_fabric import Fabric

from byol.config import TrainConfig
from byol.precision import resolve_precision, training_device_type
from byol.train.progress import quiet_amp_notice


def training_precision(train: TrainConfig) -> str:
    """``train.precision`` with ``auto`` resolved for the device it trains on."""
    return resolve_precision(train.precision, training_device_type(train.accelerator))


def build_fabric(train: TrainConfig) -> Fabric:
    """A Fabric for ``train`` (accelerator, devices, nodes, strategy, precision)."""
    devices: Any = train.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    quiet_amp_notice()
    return Fabric(
        accelerator=train.accelerator,
        devices=devices,
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=training_precision(train),  # type: ignore[arg-type]
    )
