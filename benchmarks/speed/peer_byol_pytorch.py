"""byol-pytorch (lucidrains) as its README shows it: ``BYOL(net, image_size, hidden_layer)``.

Step: ``loss = learner(images); opt.zero_grad(); loss.backward(); opt.step();
learner.update_moving_average()`` with Adam, lr 3e-4 (README), fp32. Package defaults are
kept: projection 256, hidden 4096, EMA decay 0.99 and, in 0.9.x, simplicial embeddings on
(a Linear(D -> 256) + BatchNorm in front of the projector, under 0.1% of the step's FLOPs).
The learner concatenates both views into one batch of 2B for the online and target passes.

Augmentation happens inside ``learner(images)`` on the batch (its default SimCLR-style
``augment_fn``, one random draw shared by the whole batch, not the paper's views), so:

* train step alone: a learner built with ``augment_fn = augment_fn2 = nn.Identity()`` gets the
  pre-augmented batch (both views are then the same tensor; the compute is identical);
* data pipeline: ``ImageFolder`` + ``ToTensor`` in DataLoader workers, then the learner's two
  default augmentations of the batch on the device;
* end to end: the default learner fed by that DataLoader, as in the README.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from benchmarks.speed.common import (
    Batch,
    BenchSpec,
    DataSource,
    Implementation,
    encoder,
    package_version,
    random_views,
)
from benchmarks.speed.data import endless, loader

LEARNING_RATE = 3e-4  # byol-pytorch README


def available() -> bool:
    """Whether byol_pytorch can be imported."""
    try:
        import byol_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def make_learner(spec: BenchSpec, identity_augment: bool) -> Any:
    """A ``byol_pytorch.BYOL`` around a fresh backbone on the spec's device.

    The README's ``hidden_layer='avgpool'`` is used when the backbone has that module (its
    output is the pooled feature, as ``fc`` is ``Identity``), else ``-1`` (the backbone's own
    output).
    """
    from byol_pytorch import BYOL

    net = encoder(spec).to(spec.device)
    hidden_layer: str | int = "avgpool" if hasattr(net, "avgpool") else -1
    options: dict[str, Any] = {}
    if identity_augment:
        options = {"augment_fn": nn.Identity(), "augment_fn2": nn.Identity()}
    return BYOL(
        net,
        image_size=spec.image_size,
        hidden_layer=hidden_layer,
        projection_size=spec.projection_dim,
        projection_hidden_size=spec.hidden_dim,
        **options,
    )


def raw_stream(spec: BenchSpec, source: DataSource) -> Iterator[Batch]:
    """Decoded images as float tensors in [0, 1], (B, 3, S, S), from DataLoader workers."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(source.root), transform=transforms.ToTensor())
    return endless(loader(dataset, spec), spec)


class ByolPytorchRow:
    """Two learners: one without augmentation (step alone), one with the defaults (the rest).

    The default learner is built on first use, so a run that only times the step never pays
    for it.
    """

    def __init__(self, spec: BenchSpec) -> None:
        self.spec = spec
        self.step_learner = make_learner(spec, identity_augment=True)
        self.step_optimizer = torch.optim.Adam(self.step_learner.parameters(), lr=LEARNING_RATE)
        self._learner: Any = None
        self._optimizer: torch.optim.Optimizer | None = None

    def default_learner(self) -> tuple[Any, torch.optim.Optimizer]:
        if self._learner is None or self._optimizer is None:
            self._learner = make_learner(self.spec, identity_augment=False)
            self._optimizer = torch.optim.Adam(self._learner.parameters(), lr=LEARNING_RATE)
        return self._learner, self._optimizer

    @staticmethod
    def _train(learner: Any, optimizer: torch.optim.Optimizer, images: torch.Tensor) -> None:
        loss = learner(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        learner.update_moving_average()

    def step(self, batch: Batch) -> None:
        self._train(self.step_learner, self.step_optimizer, batch[0])

    def e2e_step(self, batch: Batch) -> None:
        learner, optimizer = self.default_learner()
        self._train(learner, optimizer, batch[0])

    def data_stream(self, source: DataSource) -> Iterator[Batch]:
        learner, _ = self.default_learner()
        with torch.no_grad():
            for (images,) in raw_stream(self.spec, source):
                yield learner.augment1(images), learner.augment2(images)


def build_byol_pytorch(spec: BenchSpec) -> Implementation:
    """The byol-pytorch row."""
    row = ByolPytorchRow(spec)
    return Implementation(
        key="byol-pytorch",
        label="byol-pytorch",
        precision="fp32",
        pipeline=(
            f"ToTensor per image ({spec.workers} DataLoader workers) + default batch "
            "augmentation in the learner"
        ),
        package=package_version("byol-pytorch"),
        synthetic=lambda: random_views(spec, 1),
        step=row.step,
        data_stream=row.data_stream,
        e2e_stream=lambda source: raw_stream(spec, source),
        e2e_step=row.e2e_step,
        is_peer=True,
    )
