"""ONNX export of an encoder: ``images`` (B, 3, S, S) -> ``features`` (B, D), batch dynamic.

Two exporters exist in PyTorch. The ``torch.export`` based one ("dynamo", the default since
torch 2.9, needs ``onnx`` and ``onnxscript``) is tried first; the TorchScript one (deprecated
since 2.9 and still present in 2.14) is the fallback when the first is missing or fails, and the
only one before torch 2.5.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

ONNX_INPUT_NAME = "images"
ONNX_OUTPUT_NAME = "features"
# The dynamo exporter implements opset 18 and up; asking it for 17 runs the ONNX version
# converter, which fails on the ReduceMean of global pooling and leaves opset 18 anyway.
DYNAMO_OPSET = 18
TORCHSCRIPT_OPSET = 17
# Protobuf caps a single file at 2 GiB; past this, weights go to a side file.
_EXTERNAL_DATA_BYTES = 1_800_000_000

OnnxExporter = Literal["auto", "dynamo", "torchscript"]


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote: the file(s), the exporter used and the opset."""

    files: tuple[Path, ...]
    exporter: Literal["dynamo", "torchscript"]
    opset: int


def dynamo_exporter_available() -> bool:
    """Whether this torch has ``torch.onnx.export(dynamo=True)`` and its dependencies."""
    has_argument = "dynamo" in inspect.signature(torch.onnx.export).parameters
    dependencies = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript"))
    return has_argument and dependencies


def export_onnx(
    encoder: nn.Module,
    path: str | Path,
    image_size: int,
    exporter: OnnxExporter = "auto",
) -> OnnxExport:
    """Write ``encoder`` (eval mode, on its own device) as an ONNX graph.

    Args:
        encoder: maps images (B, 3, S, S) to features (B, D).
        path: the ``.onnx`` file to write.
        image_size: S, fixed in the graph; only the batch axis is dynamic.
        exporter: ``auto`` tries dynamo then TorchScript; the others force one.
    """
    file = Path(path)
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ValueError(f"exporter={exporter!r} is not one of 'auto', 'dynamo', 'torchscript'")
    if exporter == "dynamo" and not dynamo_exporter_available():
        raise ValueError(
            f"exporter='dynamo' needs torch>=2.5, onnx and onnxscript (torch {torch.__version__}); "
            "install them with `pip install byol[onnx]` or pass exporter='auto'"
        )
    parameter = next(encoder.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    # Batch 2: torch.export treats a size-1 dimension as the constant 1.
    example = torch.zeros(2, 3, image_size, image_size, device=device, dtype=dtype)
    external = _parameter_bytes(encoder) > _EXTERNAL_DATA_BYTES
    side_file = file.with_name(file.name + ".data")
    side_file.unlink(missing_ok=True)  # a stale one from an earlier export would mislead
    was_training = encoder.training
    encoder.eval()
    try:
        if exporter != "torchscript" and dynamo_exporter_available():
            try:
                _export_dynamo(encoder, example, file, external)
                return OnnxExport(_written(file, side_file), "dynamo", DYNAMO_OPSET)
            except Exception as error:
                if exporter == "dynamo":
                    raise ValueError(
                        f"the dynamo ONNX exporter failed on {type(encoder).__name__} "
                        f"({_first_line(error)}); pass exporter='torchscript' or 'auto'"
                    ) from error
                warnings.warn(
                    f"the dynamo ONNX exporter failed ({_first_line(error)}); "
                    "using the TorchScript exporter instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
        try:
            _export_torchscript(encoder, example, file)
        except Exception as error:
            raise ValueError(
                f"ONNX export of {type(encoder).__name__} failed ({_first_line(error)}); "
                "pass --no-onnx (onnx=False in Python) to skip the ONNX file"
            ) from error
        return OnnxExport(_written(file, side_file), "torchscript", TORCHSCRIPT_OPSET)
    finally:
        encoder.train(was_training)


def _export_dynamo(encoder: nn.Module, example: torch.Tensor, file: Path, external: bool) -> None:
    options: dict[str, Any] = {
        "dynamo": True,
        "verbose": False,
        "input_names": [ONNX_INPUT_NAME],
        "output_names": [ONNX_OUTPUT_NAME],
        "opset_version": DYNAMO_OPSET,
        # A tuple, not a dict, so the forward argument's name does not matter.
        "dynamic_shapes": ({0: torch.export.Dim("batch")},),
    }
    if "external_data" in inspect.signature(torch.onnx.export).parameters:
        options["external_data"] = external
    with warnings.catch_warnings():
        # torch 2.11's exporter trips over its own pytree deprecation; nothing for users to do.
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(encoder, (example,), str(file), **options)


def _export_torchscript(encoder: nn.Module, example: torch.Tensor, file: Path) -> None:
    options: dict[str, Any] = {
        "input_names": [ONNX_INPUT_NAME],
        "output_names": [ONNX_OUTPUT_NAME],
        "opset_version": TORCHSCRIPT_OPSET,
        "dynamic_axes": {ONNX_INPUT_NAME: {0: "batch"}, ONNX_OUTPUT_NAME: {0: "batch"}},
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    with warnings.catch_warnings():
        # Chosen on purpose as the fallback: its deprecation notice would only confuse.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*will be removed.*")
        torch.onnx.export(encoder, (example,), str(file), **options)


def _written(file: Path, side_file: Path) -> tuple[Path, ...]:
    return (file, side_file) if side_file.exists() else (file,)


def _parameter_bytes(module: nn.Module) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else 'no detail'}"
