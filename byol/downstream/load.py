"""One call from a trained run to a frozen feature extractor: :func:`load_encoder`.

``path`` may be a run folder (its ``checkpoints/last.pt``, else ``checkpoints/final.pt``), a
checkpoint file, or a folder written by ``byol export`` (``encoder.safetensors`` and the
``export.json`` that describes it). Nothing is downloaded; checkpoints are read with
``torch.load(weights_only=True)`` and exports with safetensors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import load_file
from torch import Tensor, nn

from byol.backbones import build_backbone
from byol.checkpoint import model_from_checkpoint, read_checkpoint
from byol.checkpoint.contents import check_weights_fit
from byol.export.readme import ENCODER_FILE, MANIFEST_FILE

_RUN_CHECKPOINTS = (Path("checkpoints") / "last.pt", Path("checkpoints") / "final.pt")


@dataclass(frozen=True, eq=False)
class LoadedEncoder:
    """A trained online encoder, frozen, and the preprocessing it was trained with.

    ``encoder``: eval mode, maps normalised images (B, 3, H, W) to features (B, feature_dim);
    ``image_size``: the side it was trained at; ``mean``/``std``: per-channel normalisation of
    [0, 1] RGB; ``backbone``: its name (``resnet50``, a timm name, ``small_resnet18_w8``);
    ``source``: "torchvision", "timm" or "byol"; ``origin``: the file the weights came from.
    """

    encoder: nn.Module
    feature_dim: int
    backbone: str
    source: str
    cifar_stem: bool
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    origin: Path

    def normalize(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> the same shape, ``(x - mean) / std`` per channel."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be (B, 3, H, W) RGB in [0, 1], got shape {tuple(images.shape)}"
            )
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)

    def transform(self) -> Callable[[Image.Image], Tensor]:
        """PIL image -> normalised float32 (3, S, S): the official test transform at
        ``image_size`` (shorter side to ``round(S * 256 / 224)``, centre crop ``S``)."""
        from byol.augment.reference import EvalTransform

        return EvalTransform(self.image_size, self.mean, self.std)

    @torch.inference_mode()
    def features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> features (B, feature_dim) float32, no gradients."""
        first = next(self.encoder.parameters(), None)
        device = first.device if first is not None else images.device
        output = self.encoder(self.normalize(images.to(device)))
        return torch.flatten(output, 1).float()


def load_encoder(path: str | Path) -> LoadedEncoder:
    """The trained encoder behind ``path`` (see the module docstring), on the CPU, eval mode.

    Raises:
        ValueError: ``path`` is none of a run folder, a checkpoint file or an export folder,
            or its files are damaged or do not fit their description.
    """
    location = Path(path).expanduser()
    if location.is_dir():
        if (location / MANIFEST_FILE).is_file():
            return _from_export(location)
        for relative in _RUN_CHECKPOINTS:
            if (location / relative).is_file():
                return _from_checkpoint(location / relative)
        raise ValueError(
            f"{location} is a folder with neither {MANIFEST_FILE} (a `byol export` folder) nor "
            f"{' or '.join(map(str, _RUN_CHECKPOINTS))} (a run folder); pass one of those or a "
            "checkpoint .pt file"
        )
    if location.is_file():
        if location.suffix == ".safetensors" and (location.parent / MANIFEST_FILE).is_file():
            return _from_export(location.parent)
        return _from_checkpoint(location)
    raise ValueError(
        f"{location} does not exist; pass a run folder, a checkpoint .pt file or a folder "
        "written by `byol export`"
    )


def _from_checkpoint(file: Path) -> LoadedEncoder:
    model, config = model_from_checkpoint(read_checkpoint(file), f"checkpoint {file}")
    return LoadedEncoder(
        encoder=model.online.encoder.eval(),
        feature_dim=model.feature_dim,
        backbone=config.model.backbone,
        source=model.backbone_source,
        cifar_stem=config.model.cifar_stem,
        image_size=config.augment.image_size,
        mean=_triple(config.augment.mean, "mean", file),
        std=_triple(config.augment.std, "std", file),
        origin=file,
    )


def _from_export(folder: Path) -> LoadedEncoder:
    manifest_file = folder / MANIFEST_FILE
    try:
        manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        backbone, source = str(manifest["backbone"]), str(manifest["source"])
        cifar_stem = bool(manifest.get("cifar_stem", False))
        feature_dim, image_size = int(manifest["feature_dim"]), int(manifest["image_size"])
        mean, std = manifest["input"]["mean"], manifest["input"]["std"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{manifest_file} is not an export manifest ({type(error).__name__}: {error}); "
            "export the checkpoint again with `byol export`"
        ) from error
    weights = folder / ENCODER_FILE
    if not weights.is_file():
        raise ValueError(f"export folder {folder} has no {ENCODER_FILE}; export it again")
    _check_sha256(weights, manifest)
    built = build_backbone(backbone, cifar_stem=cifar_stem)
    state = load_file(weights)
    check_weights_fit(state, built.module.state_dict(), backbone, f"export {weights}")
    built.module.load_state_dict(state, strict=True)
    if built.feature_dim != feature_dim:
        raise ValueError(
            f"{manifest_file} says feature_dim={feature_dim} but {backbone} gives "
            f"{built.feature_dim}; export the checkpoint again"
        )
    return LoadedEncoder(
        encoder=built.module.eval(),
        feature_dim=feature_dim,
        backbone=backbone,
        source=source,
        cifar_stem=cifar_stem,
        image_size=image_size,
        mean=_triple(mean, "mean", manifest_file),
        std=_triple(std, "std", manifest_file),
        origin=weights,
    )


def _check_sha256(weights: Path, manifest: dict[str, Any]) -> None:
    """Refuse weights that differ from those the manifest lists (a torn copy, an edit)."""
    from byol.export.writer import sha256_of

    listed = manifest.get("files", {}).get(weights.name, {}).get("sha256")
    if listed is not None and listed != sha256_of(weights):
        raise ValueError(
            f"{weights} does not match the sha256 in {MANIFEST_FILE}; the file was changed "
            "or copied incompletely, export the checkpoint again"
        )


def _triple(values: Any, name: str, origin: Path) -> tuple[float, float, float]:
    try:
        first, second, third = (float(v) for v in values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{origin}: {name}={values!r} is not three numbers") from error
    return first, second, third
