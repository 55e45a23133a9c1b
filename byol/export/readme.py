"""The README.md written next to exported weights: how to load each file."""

from __future__ import annotations

from dataclasses import dataclass

ENCODER_FILE = "encoder.safetensors"
TORCHVISION_FILE = "encoder_torchvision.pt"
TIMM_FILE = "encoder_timm.safetensors"
ONNX_FILE = "encoder.onnx"
MANIFEST_FILE = "export.json"
README_FILE = "README.md"


@dataclass(frozen=True)
class ExportFacts:
    """What a reader of the exported files needs to know about the encoder."""

    backbone: str
    source: str
    cifar_stem: bool
    feature_dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    onnx: bool


def readme_text(facts: ExportFacts) -> str:
    """Markdown with one loading recipe per file written for ``facts.source``."""
    size, dim = facts.image_size, facts.feature_dim
    sections = [
        f"# BYOL encoder: {facts.backbone} ({facts.source})\n",
        "The online encoder of a BYOL run (Grill et al., NeurIPS 2020): normalised RGB images "
        f"(B, 3, {size}, {size}) -> pooled features (B, {dim}). Heads and target network are "
        "not included.\n",
        "## Preprocessing\n",
        f"RGB scaled to [0, 1], resized and centre-cropped to {size}x{size}, then per channel "
        f"(x - mean) / std with mean = {list(facts.mean)}, std = {list(facts.std)}. "
        f"`{MANIFEST_FILE}` repeats these values and lists every file with its sha256.\n",
        "## Any PyTorch model (safetensors)\n",
        "```python\nfrom safetensors.torch import load_file\n\n"
        f'state = load_file("{ENCODER_FILE}")  # keys as in the model below\n```\n',
    ]
    if facts.source == "torchvision":
        sections.append(_torchvision_section(facts))
    elif facts.source == "timm":
        sections.append(_timm_section(facts))
    elif facts.source == "byol":
        sections.append(_byol_section(facts))
    if facts.onnx:
        sections.append(_onnx_section(facts))
    return "\n".join(sections)


def _torchvision_section(facts: ExportFacts) -> str:
    stem = (
        "model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)\n"
        "model.maxpool = nn.Identity()\n"
        if facts.cifar_stem
        else ""
    )
    stem_note = " and the 3x3 stride-1 CIFAR stem without max-pool" if facts.cifar_stem else ""
    return (
        f"## torchvision (`{TORCHVISION_FILE}`)\n\n"
        f"`torchvision.models.{facts.backbone}()` with its classifier removed{stem_note}:\n\n"
        "```python\nimport torch\nimport torchvision\nfrom torch import nn\n\n"
        f"model = torchvision.models.{facts.backbone}()\n"
        "model.fc = nn.Identity()\n"
        f"{stem}"
        f'state = torch.load("{TORCHVISION_FILE}", map_location="cpu", weights_only=True)\n'
        "model.load_state_dict(state, strict=True)\n"
        "model.eval()\n```\n\n"
        "With byol installed, the same model in one line:\n\n"
        "```python\nimport torch\nfrom byol.backbones import torchvision_resnet\n\n"
        f'model = torchvision_resnet("{facts.backbone}", cifar_stem={facts.cifar_stem})\n'
        f'model.load_state_dict(torch.load("{TORCHVISION_FILE}", weights_only=True))\n```\n'
    )


def _timm_section(facts: ExportFacts) -> str:
    return (
        f"## timm (`{TIMM_FILE}`)\n\n"
        "```python\nimport timm\nfrom safetensors.torch import load_file\n\n"
        f'model = timm.create_model("{facts.backbone}", num_classes=0)\n'
        f'model.load_state_dict(load_file("{TIMM_FILE}"), strict=True)\n'
        "model.eval()\n```\n"
    )


def _byol_section(facts: ExportFacts) -> str:
    return (
        "## byol's SmallResNet\n\n"
        "```python\nfrom safetensors.torch import load_file\n"
        "from byol.backbones import build_backbone\n\n"
        f'model = build_backbone("{facts.backbone}").module\n'
        f'model.load_state_dict(load_file("{ENCODER_FILE}"), strict=True)\n'
        "model.eval()\n```\n"
    )


def _onnx_section(facts: ExportFacts) -> str:
    size = facts.image_size
    return (
        f"## ONNX (`{ONNX_FILE}`)\n\n"
        f"Input `images` float32 (B, 3, {size}, {size}), output `features` float32 "
        f"(B, {facts.feature_dim}); the batch size B is free.\n\n"
        "```python\nimport onnxruntime\n\n"
        f'session = onnxruntime.InferenceSession("{ONNX_FILE}")\n'
        'features = session.run(["features"], {"images": images})[0]  # images: numpy float32\n'
        "```\n"
    )
