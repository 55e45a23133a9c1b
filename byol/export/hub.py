"""A Hugging Face-style model folder (``hf/``) that timm loads as a pretrained model.

Layout, as timm's Hub integration reads it (``timm.create_model("hf-hub:...")`` after an
upload, ``"local-dir:<folder>"`` locally):

- ``config.json``: ``architecture`` (the timm model name), ``num_classes`` (0: pooled
  features, no classifier), ``num_features`` and ``pretrained_cfg`` with timm's keys
  (``input_size``, ``interpolation``, ``crop_pct``, ``crop_mode``, ``mean``, ``std``, ...);
- ``model.safetensors``: the encoder's weights under timm's parameter names;
- ``README.md``: a model card with the training configuration, the data and the run's
  measured figures (k-NN, online linear classifier, raw-pixel and random-encoder baselines).

Written for timm backbones and torchvision ResNets with their ImageNet stem; torchvision's
and timm's ResNets name every parameter alike (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``), so their weights are written unchanged. The CIFAR stem and byol's
small ResNets have no timm architecture, so no ``hf/`` folder is written for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from byol.backbone_names import TORCHVISION_RESNET_NAMES
from byol.export.model_card import RunFigures, model_card_text, read_run_figures
from byol.export.readme import ExportFacts

HUB_FOLDER = "hf"
HUB_CONFIG_FILE = "config.json"
HUB_WEIGHTS_FILE = "model.safetensors"
HUB_README_FILE = "README.md"
# timm's crop_pct for the 256 / 224 resize of the official test transform.
CROP_PCT = 224 / 256


def timm_architecture(facts: ExportFacts) -> str | None:
    """The timm model whose parameters are the encoder's, or None when timm has none."""
    if facts.source == "timm":
        return facts.backbone
    torchvision_resnet = (
        facts.source == "torchvision" and facts.backbone in TORCHVISION_RESNET_NAMES
    )
    if torchvision_resnet and not facts.cifar_stem:
        return facts.backbone  # timm registers every one of them under the same name
    return None


def hub_config(facts: ExportFacts, architecture: str) -> dict[str, Any]:
    """``config.json`` for timm: the architecture, no classifier, and the preprocessing."""
    size = facts.image_size
    pretrained_cfg: dict[str, Any] = {
        "tag": "byol",
        "custom_load": False,
        "input_size": [3, size, size],
        "fixed_input_size": False,
        "interpolation": "bicubic",
        "crop_pct": CROP_PCT,
        "crop_mode": "center",
        "mean": list(facts.mean),
        "std": list(facts.std),
        "num_classes": 0,
    }
    pretrained_cfg.update(_timm_traits(facts, architecture))
    return {
        "architecture": architecture,
        "num_classes": 0,
        "num_features": facts.feature_dim,
        "global_pool": "avg",
        "pretrained_cfg": pretrained_cfg,
    }


def _timm_traits(facts: ExportFacts, architecture: str) -> dict[str, Any]:
    """``first_conv`` and ``classifier`` module names of ``architecture``."""
    if facts.source == "torchvision":
        return {"first_conv": "conv1", "classifier": "fc"}
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:  # pragma: no cover - a timm backbone was trained with timm installed
        return {}
    default = get_pretrained_cfg(architecture)
    if default is None:
        return {}
    return {"first_conv": default.first_conv, "classifier": default.classifier}


def write_hub_folder(
    folder: Path,
    state: Mapping[str, Tensor],
    facts: ExportFacts,
    config: Mapping[str, Any],
    run_dir: Path | None,
) -> list[Path]:
    """Write ``folder`` (``config.json``, ``model.safetensors``, ``README.md``); returns the
    files, or nothing when the backbone has no timm architecture (see the module docstring).

    ``state``: the encoder's contiguous CPU state dict; ``config``: the run's resolved config
    as nested dicts; ``run_dir``: the run folder whose ``summary.json``, ``baselines.json``
    and ``metrics.csv`` provide the measured figures (None: none known).
    """
    architecture = timm_architecture(facts)
    if architecture is None:
        return []
    folder.mkdir()
    files = [folder / HUB_CONFIG_FILE, folder / HUB_WEIGHTS_FILE, folder / HUB_README_FILE]
    files[0].write_text(json.dumps(hub_config(facts, architecture), indent=2) + "\n")
    save_file(dict(state), files[1], metadata={"format": "pt", "architecture": architecture})
    figures = read_run_figures(run_dir) if run_dir is not None else RunFigures()
    files[2].write_text(model_card_text(facts, architecture, config, figures))
    return files
