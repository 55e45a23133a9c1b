"""Export the online encoder of a checkpoint as safetensors, torchvision, timm and ONNX files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from byol.checkpoint import checkpoint_file, read_checkpoint
from byol.export.checkpoint import backbone_source, model_from_checkpoint
from byol.export.onnx_export import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, export_onnx
from byol.export.readme import (
    ENCODER_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    README_FILE,
    TIMM_FILE,
    TORCHVISION_FILE,
    ExportFacts,
    readme_text,
)

MANIFEST_FORMAT_VERSION = 1
# Files an earlier export may have left that this one might not rewrite.
_OPTIONAL_FILES = (TORCHVISION_FILE, TIMM_FILE, ONNX_FILE, ONNX_FILE + ".data")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_encoder` wrote.

    ``files``: every file written, ``export.json`` last. ``source``: "torchvision", "timm" or
    "byol" (which decides whether ``encoder_torchvision.pt`` or ``encoder_timm.safetensors``
    exists). ``onnx_exporter``: "dynamo", "torchscript", or None when no ONNX was asked for.
    """

    out_dir: Path
    backbone: str
    source: str
    feature_dim: int
    image_size: int
    files: tuple[Path, ...]
    onnx_exporter: str | None

    @property
    def manifest(self) -> Path:
        """The ``export.json`` describing the export."""
        return self.out_dir / MANIFEST_FILE


def export_encoder(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    onnx: bool = True,
    image_size: int | None = None,
) -> ExportResult:
    """Write the online encoder of a BYOL checkpoint into ``out_dir``.

    Files: ``encoder.safetensors`` (always), ``encoder_torchvision.pt`` (torchvision ResNets:
    a state dict for ``torchvision.models.<name>()`` with ``fc = Identity`` and, for the CIFAR
    stem, its 3x3 ``conv1`` and no ``maxpool``), ``encoder_timm.safetensors`` (timm models:
    for ``timm.create_model(name, num_classes=0)``), ``encoder.onnx`` (``images`` (B, 3, S, S)
    -> ``features`` (B, D)), ``README.md`` (how to load each) and ``export.json`` (backbone,
    feature size, image size, normalisation, sha256 of every file).

    Args:
        checkpoint_path: a checkpoint written by byol training, or its run folder (see
            :func:`~byol.export.checkpoint.read_checkpoint`).
        out_dir: created if needed; earlier export files in it are replaced.
        onnx: also write ``encoder.onnx``.
        image_size: S of the ONNX input; default ``augment.image_size`` of the run.
    """
    source_file = checkpoint_file(checkpoint_path)
    checkpoint = read_checkpoint(source_file)
    model, config = model_from_checkpoint(checkpoint, f"checkpoint {source_file}")
    encoder = model.online.encoder.eval()
    size = config.augment.image_size if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"image_size={size!r} must be a positive integer such as 224 or 32")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} is a file; pass a directory for the exported files")
    out.mkdir(parents=True, exist_ok=True)
    for name in _OPTIONAL_FILES:
        (out / name).unlink(missing_ok=True)

    backbone = config.model.backbone
    source = backbone_source(backbone)
    facts = ExportFacts(
        backbone=backbone,
        source=source,
        cifar_stem=config.model.cifar_stem,
        feature_dim=model.feature_dim,
        image_size=size,
        mean=tuple(config.augment.mean),
        std=tuple(config.augment.std),
        onnx=onnx,
    )
    # Fresh contiguous copies: safetensors refuses shared or strided storage (channels_last).
    state = {
        key: value.detach().cpu().clone(memory_format=torch.contiguous_format)
        for key, value in encoder.state_dict().items()
    }
    metadata = {"backbone": backbone, "source": source, "feature_dim": str(model.feature_dim)}
    files = [out / ENCODER_FILE]
    save_file(state, files[-1], metadata=metadata)
    if source == "torchvision":
        files.append(out / TORCHVISION_FILE)
        torch.save(state, files[-1])
    elif source == "timm":
        files.append(out / TIMM_FILE)
        save_file(state, files[-1], metadata=metadata)
    onnx_export = export_onnx(encoder, out / ONNX_FILE, size) if onnx else None
    if onnx_export is not None:
        files.extend(onnx_export.files)
    files.append(out / README_FILE)
    files[-1].write_text(readme_text(facts))

    manifest = _manifest(facts, checkpoint, source_file, files)
    if onnx_export is not None:
        manifest["onnx"] = {
            "input": ONNX_INPUT_NAME,
            "output": ONNX_OUTPUT_NAME,
            "opset": onnx_export.opset,
            "exporter": onnx_export.exporter,
            "dynamic_axes": {ONNX_INPUT_NAME: [0], ONNX_OUTPUT_NAME: [0]},
        }
    files.append(out / MANIFEST_FILE)
    files[-1].write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportResult(
        out_dir=out,
        backbone=backbone,
        source=source,
        feature_dim=model.feature_dim,
        image_size=size,
        files=tuple(files),
        onnx_exporter=onnx_export.exporter if onnx_export is not None else None,
    )


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(
    facts: ExportFacts, checkpoint: dict[str, Any], source_file: Path, files: list[Path]
) -> dict[str, Any]:
    from byol import __version__

    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "backbone": facts.backbone,
        "source": facts.source,
        "cifar_stem": facts.cifar_stem,
        "feature_dim": facts.feature_dim,
        "image_size": facts.image_size,
        "input": {
            "layout": "NCHW",
            "channels": "RGB",
            "range": "[0, 1] before normalisation",
            "mean": list(facts.mean),
            "std": list(facts.std),
        },
        "checkpoint": {
            "file": source_file.name,
            "sha256": sha256_of(source_file),
            "step": _int_or_none(checkpoint.get("step")),
            "epoch": _int_or_none(checkpoint.get("epoch")),
        },
        "files": {
            file.name: {"sha256": sha256_of(file), "bytes": file.stat().st_size} for file in files
        },
        "byol_version": __version__,
        "torch_version": torch.__version__,
    }


def _int_or_none(value: object) -> int | None:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    return value if isinstance(value, int) and not isinstance(value, bool) else None
