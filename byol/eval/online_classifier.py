"""A linear classifier trained during pre-training on detached encoder features.

[official] ``byol_experiment.py:163-175, 256-276``: a linear layer on the online encoder's
representation of view 1, under ``stop_gradient``, trained with softmax cross-entropy as
pre-training runs, so that label accuracy can be followed at no cost to the encoder. Here it has
its own optimiser (SGD, momentum 0.9, lr 0.1: solo-learn's ``classifier_lr`` for CIFAR BYOL,
``scripts/pretrain/cifar/byol.yaml``), so the encoder's optimiser and its gradients are exactly
those of a run without it. Accuracies are counted on the device and read once per epoch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from byol.eval.knn import topk_accuracy

CLASSIFIER_LEARNING_RATE = 0.1
CLASSIFIER_MOMENTUM = 0.9


class OnlineClassifier:
    """Linear (D -> C) probe trained step by step on features it never backpropagates into.

    ``linear`` and ``optimizer`` may be wrapped by an engine (DDP through Fabric); labels equal
    to -1 (unlabelled images) are ignored.
    """

    def __init__(self, feature_dim: int, num_classes: int, device: torch.device) -> None:
        if num_classes < 2:
            raise ValueError(f"the online classifier needs 2 or more classes, got {num_classes}")
        self.linear: nn.Module = nn.Linear(feature_dim, num_classes).to(device)
        self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
            self.linear.parameters(), lr=CLASSIFIER_LEARNING_RATE, momentum=CLASSIFIER_MOMENTUM
        )
        self._correct = torch.zeros((), dtype=torch.int64, device=device)
        self._seen = torch.zeros((), dtype=torch.int64, device=device)

    def step(self, representation: Tensor, labels: Tensor) -> None:
        """One SGD step on ``representation`` (B, D), detached here, and ``labels`` (B,)."""
        features = representation.detach().float()
        logits = self.linear(features)
        loss = F.cross_entropy(logits, labels, ignore_index=-1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        labelled = labels >= 0
        self._correct += ((logits.detach().argmax(dim=1) == labels) & labelled).sum()
        self._seen += labelled.sum()

    def read_train_accuracy(self) -> float:
        """Top-1 on the training views since the last read (one host read); NaN if none."""
        correct, seen = int(self._correct), int(self._seen)
        self._correct.zero_()
        self._seen.zero_()
        return correct / seen if seen else float("nan")

    @torch.no_grad()
    def accuracy(self, features: Tensor, labels: Tensor) -> tuple[float, float]:
        """Top-1 and top-5 on held-out ``features`` (N, D) with ``labels`` (N,)."""
        logits = self.linear(features.to(self._seen.device).float())
        top1, top5 = topk_accuracy(logits, labels.to(logits.device), (1, 5))
        return float(top1), float(top5)

    def state_dict(self) -> dict[str, Any]:
        return {"linear": self.linear.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.linear.load_state_dict(state["linear"])
        self.optimizer.load_state_dict(state["optimizer"])
