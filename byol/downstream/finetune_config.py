"""Settings of ``byol finetune`` (no torch here: the command line reads them for ``--help``).

Sources of the defaults: SGD with Nesterov momentum 0.9 and random crop + horizontal flip as
the only augmentation are the paper's fine-tuning protocols ([paper] Appendix C.2,
semi-supervised ImageNet, and Appendix D.3, transfer by fine-tuning). The cosine decay after a
short linear warm-up, the head's 10x learning rate, the weight decay by image size and the
learning rate itself are common fine-tuning practice chosen here (ours), not the paper's, which
sweeps learning rate and epochs on a validation split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

# Weight decay of the recipe: small images (CIFAR-sized, up to this side) get the stronger one.
SMALL_IMAGE_SIDE = 64
SMALL_IMAGE_WEIGHT_DECAY = 5e-4
LARGE_IMAGE_WEIGHT_DECAY = 1e-4


@dataclass
class FinetuneConfig:
    """One fine-tuning run: encoder and linear head trained together on labelled images."""

    epochs: int = 30
    """Passes over the (possibly reduced) training split ([paper] Appendix C.2 sweeps 30 and 50
    epochs)."""
    batch_size: int = 256
    """Images per optimiser step (lowered to the training split's size when it is smaller)."""
    learning_rate: float = 0.05
    """Peak learning rate of the backbone per 256 images, scaled by batch_size / 256 (ours)."""
    head_lr_multiplier: float = 10.0
    """The head's learning rate over the backbone's: a lower rate for pre-trained layers than
    for the new head (ours)."""
    warmup_epochs: float = 1.0
    """Linear warm-up from 0 before the cosine decay, in epochs (ours)."""
    momentum: float = 0.9
    """SGD momentum ([paper] Appendix C.2: 0.9)."""
    nesterov: bool = True
    """Nesterov momentum ([paper] Appendix C.2 and D.3)."""
    weight_decay: float | None = None
    """L2 penalty on weights (not on biases and normalisation parameters); unset (None): 5e-4
    for images up to 64 px, 1e-4 above (ours)."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (0: none, as the paper)."""
    crop_scale_min: float = 0.08
    """Smallest random-resized-crop area as a fraction of the image ([paper] Appendix C.2:
    random crops, 0.08-1 as in pre-training)."""
    crop_scale_max: float = 1.0
    """Largest random-resized-crop area."""
    flip_prob: float = 0.5
    """Probability of a horizontal flip."""
    from_scratch: bool = False
    """Train the same network from random initialisation instead of the checkpoint's weights,
    with the same recipe: fine-tuned minus from-scratch accuracy is what pre-training gave."""
    seed: int = 0
    """Seed of the initialisation (from scratch), the batch order and the augmentation."""
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    """Autocast mode of the forward pass; auto: bf16 on CUDA devices that support it."""

    def resolved_weight_decay(self, image_size: int) -> float:
        """``weight_decay``, or the recipe's choice for ``image_size`` when it is None."""
        if self.weight_decay is not None:
            return self.weight_decay
        return (
            SMALL_IMAGE_WEIGHT_DECAY if image_size <= SMALL_IMAGE_SIDE else LARGE_IMAGE_WEIGHT_DECAY
        )

    def check(self) -> FinetuneConfig:
        """Raise ``ValueError`` naming the first setting out of range; returns ``self``."""
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{_flag(name)} {value!r} must be a positive integer")
        positive = ("learning_rate", "head_lr_multiplier")
        at_least_zero = ("warmup_epochs", "momentum", "label_smoothing")
        for name in positive + at_least_zero:
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                bound = "> 0" if name in positive else ">= 0"
                raise ValueError(f"{_flag(name)} {value!r} must be finite and {bound}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(f"--weight-decay {self.weight_decay!r} must be >= 0")
        if self.label_smoothing >= 1 or self.momentum >= 1:
            raise ValueError(
                f"--label-smoothing {self.label_smoothing} and --momentum {self.momentum} "
                "must be below 1"
            )
        if not 0 < self.crop_scale_min <= self.crop_scale_max <= 1:
            raise ValueError(
                f"--crop-scale-min {self.crop_scale_min} and --crop-scale-max "
                f"{self.crop_scale_max} must satisfy 0 < min <= max <= 1, e.g. 0.08 and 1"
            )
        if not 0 <= self.flip_prob <= 1:
            raise ValueError(f"--flip-prob {self.flip_prob} must lie in [0, 1]")
        if self.nesterov and self.momentum == 0:
            raise ValueError("--nesterov needs --momentum above 0 (or pass --no-nesterov)")
        return self


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_names() -> list[str]:
    """The settings' names, in declaration order."""
    return [field.name for field in fields(FinetuneConfig)]
