"""Label-free collapse monitors of BYOL projections.

BYOL has no negatives, so a failed run can map every image to the same point. Two cheap signals
catch it without labels:

* :func:`projection_std`: the standard deviation over the batch of the L2-normalised projections,
  averaged over dimensions (SimSiam, Chen & He 2021, Sec. 4.1; logged as ``z_std`` by
  solo-learn). Collapse gives 0; isotropic projections give about 1/sqrt(D).
* :func:`effective_rank`: RankMe (Garrido et al., "RankMe: Assessing the Downstream Performance
  of Pretrained Self-Supervised Representations by Their Rank", ICML 2023, Eq. 1), the exponential
  of the entropy of the normalised singular values; 1 for a rank-1 batch, up to min(B, D).

Both are pure functions returning 0-d tensors on the input's device. :func:`projection_std` never
waits for the device; :func:`effective_rank` does on CUDA (every ``torch.linalg`` decomposition
checks cuSOLVER's convergence flag on the host), so compute it only at log steps, where the
logger reads host floats anyway. :class:`CollapseDetector` consumes the values as host floats at
log intervals only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

# [RankMe] Eq. 1 adds eps = 1e-7 to the normalised singular values so log(0) never happens.
RANKME_EPS = 1e-7


def _check_batch(z: Tensor, name: str) -> None:
    if z.ndim != 2:
        raise ValueError(f"{name} expects projections of shape (B, D); got {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(
            f"{name} needs a batch of at least 2 projections to measure spread; got {z.shape[0]}"
        )


def projection_std(z: Tensor) -> Tensor:
    """Mean over dimensions of the batch standard deviation of L2-normalised projections.

    Args:
        z: projections (B, D), B >= 2, any float dtype (computed in float32).

    Returns:
        0-d float32 tensor on ``z.device``: 0 for a collapsed batch (every row pointing the same
        way), about 1/sqrt(D) for isotropic Gaussian projections, at most 1/sqrt(D) * sqrt(B/(B-1))
        by Cauchy-Schwarz for the unbiased estimator used here.
    """
    _check_batch(z, "projection_std")
    normalised = F.normalize(z.detach().float(), dim=1)
    return normalised.std(dim=0).mean()


def effective_rank(z: Tensor, eps: float = RANKME_EPS) -> Tensor:
    """RankMe effective rank exp(-sum_k p_k log p_k), p_k = sigma_k / ||sigma||_1 + eps.

    Singular values of the raw (uncentred) projections, as in Garrido et al. 2023, Eq. 1.
    On CUDA, ``torch.linalg.svdvals`` blocks the host until the queued work is done (it reads
    cuSOLVER's convergence flag; measured with torch 2.11 on an H100, as do ``eigvalsh`` of the
    Gram matrix and every other decomposition), so call it at log steps only, next to the
    ``.item()`` calls of the logger. It runs in float32 and costs O(B D min(B, D)).

    Args:
        z: projections (B, D), B >= 2, any float dtype (computed in float32).
        eps: added to the normalised singular values; 1e-7 in the paper.

    Returns:
        0-d float32 tensor on ``z.device`` in about [1, min(B, D)]: ~1 for a constant or rank-1
        batch, close to min(B, D) for isotropic Gaussian projections with B << D or B >> D.
        An all-zero batch gives min(B, D) * eps * (-log eps) ~ 0.
    """
    _check_batch(z, "effective_rank")
    singular_values = torch.linalg.svdvals(z.detach().float())
    p = singular_values / singular_values.sum().clamp_min(torch.finfo(torch.float32).tiny) + eps
    return torch.exp(-(p * p.log()).sum())


@dataclass
class CollapseReport:
    """Verdict of :meth:`CollapseDetector.update`.

    Attributes:
        collapsed: the std has been below the threshold for ``patience`` consecutive updates.
        message: a human-readable warning when ``collapsed`` first becomes true, else None.
    """

    collapsed: bool
    message: str | None = None


@dataclass
class CollapseDetector:
    """Declares collapse when ``projection_std`` stays below ``threshold / sqrt(D)``.

    Feed it host floats at log intervals (``TrainConfig.log_every_steps``), never per step.
    ``threshold`` is :attr:`byol.config.MonitorConfig.collapse_std_threshold` (0.1): healthy
    projections sit near 1/sqrt(D), a collapsed run near 0, so a tenth of the isotropic value
    leaves a wide margin. A non-finite std counts as below the threshold.

    Args:
        dimension: D, the projection size (256 in [official] ``configs/byol.py:40-42``).
        threshold: fraction of 1/sqrt(D) under which a value is suspicious.
        patience: consecutive suspicious updates before declaring collapse; one healthy update
            resets the count (a single bad batch is not a collapse).
    """

    dimension: int
    threshold: float = 0.1
    patience: int = 3
    consecutive: int = field(default=0, init=False)
    collapsed: bool = field(default=False, init=False)
    collapsed_at_step: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.dimension < 1:
            raise ValueError(f"dimension={self.dimension} must be the projection size (>= 1)")
        if not 0 < self.threshold < 1:
            raise ValueError(
                f"threshold={self.threshold} must be in (0, 1), a fraction of 1/sqrt(D); "
                "the default is 0.1"
            )
        if self.patience < 1:
            raise ValueError(f"patience={self.patience} must be at least 1")

    @property
    def std_threshold(self) -> float:
        """The absolute std below which a value counts as collapsed: threshold / sqrt(D)."""
        return self.threshold / math.sqrt(self.dimension)

    def update(
        self, step: int, projection_std: float, effective_rank: float | None = None
    ) -> CollapseReport:
        """Record one logged value and say whether the run has collapsed.

        Args:
            step: the optimiser step of the value (for the message).
            projection_std: host float from :func:`projection_std`.
            effective_rank: optional host float from :func:`effective_rank`, quoted in the
                message.

        Returns:
            :class:`CollapseReport`; ``message`` is set only on the update that first declares
            collapse, so the caller can warn once (and stop if ``MonitorConfig.stop_on_collapse``).
        """
        suspicious = not math.isfinite(projection_std) or projection_std < self.std_threshold
        self.consecutive = self.consecutive + 1 if suspicious else 0
        if self.collapsed or self.consecutive < self.patience:
            return CollapseReport(collapsed=self.collapsed)
        self.collapsed = True
        self.collapsed_at_step = step
        rank_text = "" if effective_rank is None else f", effective rank {effective_rank:.2f}"
        message = (
            f"representation collapse at step {step}: projection std {projection_std:.3g} has "
            f"been below {self.std_threshold:.3g} (= {self.threshold} / sqrt({self.dimension}); "
            f"healthy ~ {1 / math.sqrt(self.dimension):.3g}) for {self.consecutive} consecutive "
            f"log steps{rank_text}. Every image maps to nearly the same projection. Common "
            "causes: learning rate too high or LARS disabled, tau too low, a missing predictor, "
            "or BatchNorm removed from the heads without a replacement."
        )
        return CollapseReport(collapsed=True, message=message)
