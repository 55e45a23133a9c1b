"""Export a trained BYOL encoder: safetensors, torchvision / timm state dicts, ONNX.

Example::

    from byol.export import export_encoder, load_encoder_from_checkpoint

    result = export_encoder("runs/cifar/checkpoints/last.pt", "exported/")
    encoder, config = load_encoder_from_checkpoint("runs/cifar/checkpoints/last.pt")

Checkpoints are read with ``torch.load(..., weights_only=True)`` only.
"""

from byol.checkpoint import read_checkpoint
from byol.export.checkpoint import load_encoder_from_checkpoint, model_from_checkpoint
from byol.export.onnx_export import OnnxExport, export_onnx
from byol.export.writer import ExportResult, export_encoder, sha256_of

__all__ = [
    "ExportResult",
    "OnnxExport",
    "export_encoder",
    "export_onnx",
    "load_encoder_from_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint",
    "sha256_of",
]
