"""Projection and prediction heads.

Linear(d -> 4096) -> BatchNorm -> ReLU -> Linear(4096 -> 256), with no BatchNorm on the output
([paper] Section 3.3; [official] ``utils/networks.py:40-45``, sizes ``configs/byol.py:40-42``).
"""

from __future__ import annotations

from torch import Tensor, nn


class MLPHead(nn.Sequential):
    """Two-layer MLP used as projector g and predictor q.

    Shapes: (B, input_dim) -> (B, output_dim).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 4096,
        output_dim: int = 256,
        batchnorm_momentum: float = 0.1,
        batchnorm_eps: float = 1e-5,
    ) -> None:
        for name, value in (
            ("input_dim", input_dim),
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
        ):
            if value <= 0:
                raise ValueError(f"{name}={value} must be a positive layer width")
        super().__init__(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim, eps=batchnorm_eps, momentum=batchnorm_momentum),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, features: Tensor) -> Tensor:
        return super().forward(features)
