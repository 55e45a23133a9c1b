"""Each dense architecture builds over the trained ResNet and answers one forward pass."""

from __future__ import annotations

import pytest

from byol.downstream.dense_export import build_dense_model, check_dense_model
from byol.downstream.dense_spec import DenseModelSpec
from tests.helpers import Resnet18Run


@pytest.mark.parametrize(
    ("architecture", "outputs"),
    [
        ("retinanet", {"boxes", "scores", "labels"}),
        ("maskrcnn", {"boxes", "scores", "labels", "masks"}),
        ("fcn", {"out"}),
    ],
)
def test_architecture_builds_and_runs(
    resnet18_run: Resnet18Run, architecture: str, outputs: set[str]
) -> None:
    spec = DenseModelSpec(architecture, 3)
    model = build_dense_model(resnet18_run.export_dir, spec)
    assert set(check_dense_model(model, spec)) == outputs
    assert model.training  # the check leaves the mode as it found it
    # The trained encoder's stem sits inside, whatever the head.
    body = model.backbone.body if architecture != "fcn" else model.backbone
    stem = resnet18_run.model.online.encoder.conv1.weight
    assert body.conv1.weight.data_ptr() != stem.data_ptr()  # a copy
    assert (body.conv1.weight == stem).all()


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="must be one of fasterrcnn"):
        DenseModelSpec("yolo", 3).check()
