"""lightly's documented BYOL recipe (lightly docs, "Examples: BYOL"), through its public API.

Model: the backbone, ``BYOLProjectionHead`` and ``BYOLPredictionHead`` with momentum copies of
backbone and projection head (``deactivate_requires_grad``); loss: ``NegativeCosineSimilarity``
symmetrised as ``0.5 * (l(p0, z1) + l(p1, z0))``; EMA: ``update_momentum`` on backbone and
projection head before the forward pass; optimiser: SGD, lr 0.06, as in the example; fp32.
Data: ``BYOLTransform`` (``BYOLView1Transform``/``BYOLView2Transform`` at the benchmark's size,
the paper's blur/solarize probabilities) over a torchvision ``ImageFolder`` DataLoader.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from benchmarks.speed.common import (
    Batch,
    BenchSpec,
    DataSource,
    Implementation,
    encoder,
    feature_dim,
    package_version,
    random_views,
)
from benchmarks.speed.data import endless, loader

LEARNING_RATE = 0.06  # lightly's BYOL example


def available() -> bool:
    """Whether lightly can be imported."""
    try:
        import lightly.models.modules  # noqa: F401
    except ImportError:
        return False
    return True


class LightlyBYOL(nn.Module):
    """Online backbone + lightly heads, and their momentum (target) copies.

    ``forward``: (B, 3, H, W) -> prediction p (B, P); ``forward_momentum``: -> target
    projection z (B, P), no gradient (its parameters do not require one).
    """

    def __init__(self, backbone: nn.Module, input_dim: int, hidden_dim: int, output_dim: int):
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        super().__init__()
        self.backbone = backbone
        self.projection_head = BYOLProjectionHead(input_dim, hidden_dim, output_dim)
        self.prediction_head = BYOLPredictionHead(output_dim, hidden_dim, output_dim)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)

    def forward(self, images: Tensor) -> Tensor:
        features = self.backbone(images).flatten(start_dim=1)
        return self.prediction_head(self.projection_head(features))

    def forward_momentum(self, images: Tensor) -> Tensor:
        features = self.backbone_momentum(images).flatten(start_dim=1)
        return self.projection_head_momentum(features).detach()


def data_stream(spec: BenchSpec, source: DataSource) -> Iterator[Batch]:
    """``BYOLTransform`` per image in DataLoader workers: batches ``(x0, x1)``."""
    from lightly.transforms.byol_transform import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
    )
    from torchvision.datasets import ImageFolder

    transform = BYOLTransform(
        view_1_transform=BYOLView1Transform(input_size=spec.image_size),
        view_2_transform=BYOLView2Transform(input_size=spec.image_size),
    )
    dataset = ImageFolder(str(source.root), transform=transform)
    return endless(loader(dataset, spec), spec)


def build_lightly(spec: BenchSpec) -> Implementation:
    """The lightly row: model, loss, optimiser and step as in lightly's BYOL example."""
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.utils import update_momentum

    model = LightlyBYOL(encoder(spec), feature_dim(spec), spec.hidden_dim, spec.projection_dim).to(
        spec.device
    )
    criterion = NegativeCosineSimilarity()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def step(batch: Batch) -> None:
        x0, x1 = batch
        update_momentum(model.backbone, model.backbone_momentum, m=spec.tau)
        update_momentum(model.projection_head, model.projection_head_momentum, m=spec.tau)
        p0 = model(x0)
        z0 = model.forward_momentum(x0)
        p1 = model(x1)
        z1 = model.forward_momentum(x1)
        loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return Implementation(
        key="lightly",
        label="lightly",
        precision="fp32",
        pipeline=f"BYOLTransform per image, {spec.workers} DataLoader workers",
        package=package_version("lightly"),
        synthetic=lambda: random_views(spec, 2),
        step=step,
        data_stream=lambda source: data_stream(spec, source),
        is_peer=True,
    )
