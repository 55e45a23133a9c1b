"""Export the online encoder of a checkpoint as safetensors, torchvision, timm and ONNX files,
and as a Hugging Face-style folder for timm (:mod:`byol.export.hub`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from byol.atomic import atomic_folder, file_mode, folder_mode
from byol.checkpoint import checkpoint_file, model_from_checkpoint, read_checkpoint
from byol.export.hub import HUB_FOLDER, write_hub_folder
from byol.export.onnx_export import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, OnnxExport, export_onnx
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
# Every file an export may hold: a folder with others is no export folder.
_EXPORT_FILES = frozenset(
    (
        ENCODER_FILE,
        TORCHVISION_FILE,
        TIMM_FILE,
        ONNX_FILE,
        ONNX_FILE + ".data",
        README_FILE,
        MANIFEST_FILE,
        HUB_FOLDER,
    )
)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_encoder` wrote.

    ``files``: every file written (``hf/...`` included), ``export.json`` last. ``source``: "torchvision", "timm" or
    "byol" (which decides whether ``encoder_torchvision.pt`` or ``encoder_timm.safetensors``
    exists). ``onnx_exporter``: "dynamo", "torchscript", or None when no ONNX was written;
    ``onnx_note``: why not, when it was skipped because the ``onnx`` package is missing.
    """

    out_dir: Path
    backbone: str
    source: str
    feature_dim: int
    image_size: int
    files: tuple[Path, ...]
    onnx_exporter: str | None
    onnx_note: str | None = None

    @property
    def manifest(self) -> Path:
        """The ``export.json`` describing the export."""
        return self.out_dir / MANIFEST_FILE


def onnx_available() -> bool:
    """Whether the ``onnx`` package can be imported (a default install may lack it)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def export_encoder(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    onnx: bool | None = None,
    image_size: int | None = None,
) -> ExportResult:
    """Write the online encoder of a BYOL checkpoint into ``out_dir``.

    Files: ``encoder.safetensors`` (always), ``encoder_torchvision.pt`` (torchvision ResNets:
    a state dict for ``torchvision.models.<name>()`` with ``fc = Identity`` and, for the CIFAR
    stem, its 3x3 ``conv1`` and no ``maxpool``), ``encoder_timm.safetensors`` (timm models:
    for ``timm.create_model(name, num_classes=0)``), ``encoder.onnx`` (``images`` (B, 3, S, S)
    -> ``features`` (B, D)), ``README.md`` (how to load each), ``hf/`` (timm backbones and
    torchvision ResNets without the CIFAR stem: ``config.json``, ``model.safetensors`` and a
    model card for ``timm.create_model("local-dir:OUT/hf", pretrained=True)``, see
    :mod:`byol.export.hub`) and ``export.json`` (backbone, feature size, image size,
    normalisation, sha256 of every file).

    The export is written into a temporary sibling folder and renamed into place as a whole:
    a failure (or a kill) leaves an earlier export in ``out_dir`` as it was, never a mix.

    Args:
        checkpoint_path: a checkpoint written by byol training, or its run folder (see
            :func:`~byol.checkpoint.read_checkpoint`).
        out_dir: a new folder, or an earlier export (replaced as a whole); a folder holding
            other files is refused.
        onnx: also write ``encoder.onnx``; None (default): when the ``onnx`` package is
            installed (``onnx_note`` says when it was skipped).
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
    _check_out_dir(out)
    note = None
    if onnx is None:
        onnx = onnx_available()
        if not onnx:
            note = (
                "the onnx package is not installed, so no encoder.onnx was written; install "
                "it with `pip install byol[onnx]` to get one (--no-onnx skips it quietly)"
            )
    backbone = config.model.backbone
    facts = ExportFacts(
        backbone=backbone,
        source=model.backbone_source,
        cifar_stem=config.model.cifar_stem,
        feature_dim=model.feature_dim,
        image_size=size,
        mean=tuple(config.augment.mean),
        std=tuple(config.augment.std),
        onnx=onnx,
    )
    with atomic_folder(out) as staging:
        names, onnx_export = _write_files(staging, encoder, facts, checkpoint, source_file)
    return ExportResult(
        out_dir=out,
        backbone=backbone,
        source=facts.source,
        feature_dim=model.feature_dim,
        image_size=size,
        files=tuple(out / name for name in names),
        onnx_exporter=onnx_export.exporter if onnx_export is not None else None,
        onnx_note=note,
    )


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} is a file; pass a directory for the exported files")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _EXPORT_FILES)
        if foreign:
            raise ValueError(
                f"out_dir {out} holds files that are not from an export ({', '.join(foreign[:3])}"
                "); an export replaces its folder as a whole, so pass a new or an export folder"
            )


def _write_files(
    folder: Path,
    encoder: torch.nn.Module,
    facts: ExportFacts,
    checkpoint: dict[str, Any],
    source_file: Path,
) -> tuple[list[str], OnnxExport | None]:
    """Write every export file into ``folder``; returns their names (manifest last)."""
    # Fresh contiguous copies: safetensors refuses shared or strided storage (channels_last).
    state = {
        key: value.detach().cpu().clone(memory_format=torch.contiguous_format)
        for key, value in encoder.state_dict().items()
    }
    metadata = {
        "backbone": facts.backbone,
        "source": facts.source,
        "feature_dim": str(facts.feature_dim),
    }
    files = [folder / ENCODER_FILE]
    save_file(state, files[-1], metadata=metadata)
    if facts.source == "torchvision":
        files.append(folder / TORCHVISION_FILE)
        torch.save(state, files[-1])
    elif facts.source == "timm":
        files.append(folder / TIMM_FILE)
        save_file(state, files[-1], metadata=metadata)
    onnx_export = export_onnx(encoder, folder / ONNX_FILE, facts.image_size) if facts.onnx else None
    if onnx_export is not None:
        files.extend(onnx_export.files)
    files.append(folder / README_FILE)
    files[-1].write_text(readme_text(facts))
    run_dir = source_file.parent.parent if source_file.parent.name == "checkpoints" else None
    files.extend(write_hub_folder(folder / HUB_FOLDER, state, facts, checkpoint["config"], run_dir))

    manifest = _manifest(facts, checkpoint, source_file, folder, files)
    if onnx_export is not None:
        manifest["onnx"] = {
            "input": ONNX_INPUT_NAME,
            "output": ONNX_OUTPUT_NAME,
            "opset": onnx_export.opset,
            "exporter": onnx_export.exporter,
            "dynamic_axes": {ONNX_INPUT_NAME: [0], ONNX_OUTPUT_NAME: [0]},
        }
    files.append(folder / MANIFEST_FILE)
    files[-1].write_text(json.dumps(manifest, indent=2) + "\n")
    mode = file_mode()
    for file in files:
        file.chmod(mode)
    if (folder / HUB_FOLDER).is_dir():
        (folder / HUB_FOLDER).chmod(folder_mode())
    return [file.relative_to(folder).as_posix() for file in files], onnx_export


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(
    facts: ExportFacts,
    checkpoint: dict[str, Any],
    source_file: Path,
    folder: Path,
    files: list[Path],
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
            file.relative_to(folder).as_posix(): {
                "sha256": sha256_of(file),
                "bytes": file.stat().st_size,
            }
            for file in files
        },
        "byol_version": __version__,
        "torch_version": torch.__version__,
    }


def _int_or_none(value: object) -> int | None:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    return value if isinstance(value, int) and not isinstance(value, bool) else None
