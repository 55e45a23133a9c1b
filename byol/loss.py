"""The BYOL loss: a normalised regression of the online prediction onto the target projection.

[paper] Eq. 2: L = ||n(q) - n(z')||^2 = 2 - 2 <q, z'> / (||q|| ||z'||), with n the L2
normalisation. The loss is symmetrised by feeding each view to both networks (Eq. 3,
L_total = L + L~); [official] ``utils/helpers.py:109-112`` computes the per-direction term and
``byol_experiment.py:243-250`` **sums** the two directions, then averages over the batch.
Averaging the two directions instead halves the effective learning rate of the parameters LARS
does not adapt (biases, BatchNorm), which cost lightly 7 points of ImageNet top-1 (PR #1286).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def regression_loss(prediction: Tensor, target_projection: Tensor) -> Tensor:
    """Per-sample normalised regression loss ``||n(p) - n(z)||^2 = 2 - 2 cos(p, z)``.

    Args:
        prediction: online prediction q, shape (B, D).
        target_projection: target projection z', shape (B, D); gradients are stopped here.

    Returns:
        Tensor of shape (B,), each value in [0, 4].
    """
    if prediction.shape != target_projection.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} differs from target projection shape "
            f"{tuple(target_projection.shape)}; the predictor output size must equal the "
            "projection size"
        )
    # Normalise in float32: bf16 cosine similarities lose the precision the loss lives on.
    p = F.normalize(prediction.float(), dim=-1)
    z = F.normalize(target_projection.detach().float(), dim=-1)
    return 2.0 - 2.0 * (p * z).sum(dim=-1)


def byol_loss(
    online_prediction_1: Tensor,
    online_prediction_2: Tensor,
    target_projection_1: Tensor,
    target_projection_2: Tensor,
) -> Tensor:
    """Symmetric BYOL loss: view-1 prediction regresses view-2 target and vice versa.

    Args:
        online_prediction_1: q_theta(z_theta) of view 1, shape (B, D).
        online_prediction_2: the same for view 2, shape (B, D).
        target_projection_1: z'_xi of view 1, shape (B, D).
        target_projection_2: z'_xi of view 2, shape (B, D).

    Returns:
        Scalar: the two directions summed, averaged over the batch; in [0, 8].
    """
    per_sample = regression_loss(online_prediction_1, target_projection_2) + regression_loss(
        online_prediction_2, target_projection_1
    )
    return per_sample.mean()
