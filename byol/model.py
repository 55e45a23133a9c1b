"""The BYOL module: online network, target network, and their symmetric loss.

[paper] Section 3 and Fig. 2: the online network (encoder f_theta, projector g_theta,
predictor q_theta) predicts the target network's projection (encoder f_xi, projector g_xi) of
another view of the same image. The target is an exponential moving average of the online
weights and never receives gradients.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from byol.backbones import Backbone, build_backbone, wrap_backbone
from byol.config import ModelConfig
from byol.ema import ema_update_
from byol.heads import MLPHead
from byol.loss import byol_loss


@dataclass
class BYOLOutput:
    """What one forward pass of :class:`BYOL` returns (B = batch, P = projection size).

    ``loss``: scalar, both directions summed, averaged over the batch ([official]
    ``byol_experiment.py:243-250``). ``online_representation_1``: y_theta of view 1, the
    encoder's (B, D) output, which the online classifier reads (detached) as [official]
    ``byol_experiment.py:163-175`` does. ``online_projection_*``: z_theta, (B, P), used by the
    collapse monitors. ``online_prediction_*``: q_theta(z_theta), (B, P).
    ``target_projection_*``: z'_xi, (B, P), without gradient.

    Not frozen: engines (Lightning's precision plugins) convert tensors of outputs in place.
    """

    loss: Tensor
    online_representation_1: Tensor
    online_projection_1: Tensor
    online_projection_2: Tensor
    online_prediction_1: Tensor
    online_prediction_2: Tensor
    target_projection_1: Tensor
    target_projection_2: Tensor


class OnlineNetwork(nn.Module):
    """Encoder -> projector -> predictor. (B, 3, H, W) -> (projection (B, P), prediction (B, P))."""

    def __init__(self, encoder: nn.Module, projector: MLPHead, predictor: MLPHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.predictor = predictor

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        _, projection, prediction = self.representation_projection_prediction(images)
        return projection, prediction

    def representation_projection_prediction(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """y_theta (B, D), z_theta (B, P) and q_theta(z_theta) (B, P) of one batch."""
        representation = self.encoder(images)
        projection = self.projector(representation)
        return representation, projection, self.predictor(projection)


class TargetNetwork(nn.Module):
    """Encoder -> projector, weights set only by the EMA. (B, 3, H, W) -> (B, P)."""

    def __init__(self, encoder: nn.Module, projector: MLPHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, images: Tensor) -> Tensor:
        return self.projector(self.encoder(images))


class BYOL(nn.Module):
    """Bootstrap Your Own Latent around any backbone.

    Example::

        model = BYOL(backbone)                 # images -> pooled features (B, D)
        out = model(view1, view2)              # views: (B, 3, H, W)
        out.loss.backward(); optimizer.step()
        model.update_target(tau)

    Args:
        backbone: a :class:`~byol.backbones.Backbone` or any module mapping images to pooled
            features (B, D).
        feature_dim: D, when a plain module does not declare it (``num_features`` etc.).
        projector_hidden_dim, projection_dim, predictor_hidden_dim: 4096 / 256 / 4096
            ([official] ``configs/byol.py:40-42``).
        batchnorm_momentum, batchnorm_eps: 0.1 / 1e-5 (official decay 0.9,
            ``configs/byol.py:47-56``).

    The target starts as a copy of the online encoder and projector. The official code
    initialises it separately (``byol_experiment.py:232-236``); with a copy, the first
    steps regress onto the same random network, which the EMA makes irrelevant within a few
    hundred steps, and it is what every PyTorch re-implementation does.
    """

    def __init__(
        self,
        backbone: Backbone | nn.Module,
        feature_dim: int | None = None,
        projector_hidden_dim: int = 4096,
        projection_dim: int = 256,
        predictor_hidden_dim: int = 4096,
        batchnorm_momentum: float = 0.1,
        batchnorm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, Backbone):
            backbone = wrap_backbone(backbone, feature_dim)
        elif feature_dim is not None and feature_dim != backbone.feature_dim:
            raise ValueError(
                f"feature_dim={feature_dim} contradicts the backbone's {backbone.feature_dim}; "
                "leave feature_dim unset"
            )
        self.feature_dim = backbone.feature_dim
        # Where the encoder comes from ("torchvision", "timm", "byol", "custom"): exports say so.
        self.backbone_source = backbone.source
        projector = MLPHead(
            backbone.feature_dim,
            projector_hidden_dim,
            projection_dim,
            batchnorm_momentum,
            batchnorm_eps,
        )
        predictor = MLPHead(
            projection_dim, predictor_hidden_dim, projection_dim, batchnorm_momentum, batchnorm_eps
        )
        self.online = OnlineNetwork(backbone.module, projector, predictor)
        self.target = TargetNetwork(copy.deepcopy(backbone.module), copy.deepcopy(projector))
        self.target.requires_grad_(False)

    @property
    def encoder(self) -> nn.Module:
        """The online encoder: the network kept after pre-training."""
        return self.online.encoder

    def forward(self, view_1: Tensor, view_2: Tensor) -> BYOLOutput:
        """Both views through both networks, each view in its own pass.

        Separate passes keep BatchNorm statistics per view ([official]
        ``byol_experiment.py:182-185``); concatenating the views would mix them. One call does
        all four passes so a DistributedDataParallel wrapper sees a single forward.

        Args:
            view_1, view_2: augmented views of the same images, (B, 3, H, W).
        """
        if view_1.shape != view_2.shape:
            raise ValueError(
                f"the two views have shapes {tuple(view_1.shape)} and {tuple(view_2.shape)}; "
                "they must be crops of the same images at the same size"
            )
        representation_1, projection_1, prediction_1 = (
            self.online.representation_projection_prediction(view_1)
        )
        projection_2, prediction_2 = self.online(view_2)
        with torch.no_grad():
            target_projection_1 = self.target(view_1)
            target_projection_2 = self.target(view_2)
        loss = byol_loss(prediction_1, prediction_2, target_projection_1, target_projection_2)
        return BYOLOutput(
            loss=loss,
            online_representation_1=representation_1,
            online_projection_1=projection_1,
            online_projection_2=projection_2,
            online_prediction_1=prediction_1,
            online_prediction_2=prediction_2,
            target_projection_1=target_projection_1,
            target_projection_2=target_projection_2,
        )

    def online_target_pairs(self) -> tuple[list[Tensor], list[Tensor]]:
        """Matching (target, online) parameter lists: encoder then projector."""
        target: list[Tensor] = [
            *self.target.encoder.parameters(),
            *self.target.projector.parameters(),
        ]
        online: list[Tensor] = [
            *self.online.encoder.parameters(),
            *self.online.projector.parameters(),
        ]
        return target, online

    def update_target(self, tau: float) -> None:
        """EMA step: xi <- tau * xi + (1 - tau) * theta ([paper] Eq. 1)."""
        target, online = self.online_target_pairs()
        ema_update_(target, online, tau)


def build_model(config: ModelConfig) -> BYOL:
    """A :class:`BYOL` from a :class:`~byol.config.ModelConfig` (backbone by name)."""
    backbone = build_backbone(config.backbone, config.cifar_stem, config.zero_init_residual)
    if config.feature_dim is not None and config.feature_dim != backbone.feature_dim:
        raise ValueError(
            f"model.feature_dim={config.feature_dim} but backbone {config.backbone} gives "
            f"{backbone.feature_dim}; leave model.feature_dim unset (null)"
        )
    return BYOL(
        backbone,
        projector_hidden_dim=config.projector_hidden_dim,
        projection_dim=config.projection_dim,
        predictor_hidden_dim=config.predictor_hidden_dim,
        batchnorm_momentum=config.batchnorm_momentum,
        batchnorm_eps=config.batchnorm_eps,
    )
