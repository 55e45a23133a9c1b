"""The projector and predictor MLP ([paper] Section 3.3)."""

import pytest
import torch
from torch import nn

from byol.heads import MLPHead


def test_layers_are_linear_batchnorm_relu_linear_with_no_batchnorm_on_the_output() -> None:
    head = MLPHead(64, 4096, 256)
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (head[0].in_features, head[0].out_features) == (64, 4096)
    assert (head[3].in_features, head[3].out_features) == (4096, 256)


def test_shapes_and_batchnorm_settings() -> None:
    head = MLPHead(8, 16, 4, batchnorm_momentum=0.01, batchnorm_eps=1e-3)
    assert head(torch.randn(5, 8)).shape == (5, 4)
    assert head[1].momentum == 0.01 and head[1].eps == 1e-3


def test_hidden_features_are_normalised_over_the_batch_in_training() -> None:
    head = MLPHead(8, 16, 4)
    hidden = head[1](head[0](torch.randn(64, 8) * 10 + 3))
    torch.testing.assert_close(hidden.mean(0), torch.zeros(16), atol=1e-5, rtol=0)


@pytest.mark.parametrize("field", ["input_dim", "hidden_dim", "output_dim"])
def test_non_positive_widths_are_refused(field: str) -> None:
    sizes = {"input_dim": 8, "hidden_dim": 16, "output_dim": 4, field: 0}
    with pytest.raises(ValueError, match=f"{field}=0"):
        MLPHead(**sizes)
