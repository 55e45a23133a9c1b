"""Use a trained BYOL encoder downstream: load it, or build detectors and segmenters on it.

Example::

    import byol

    loaded = byol.load_encoder("runs/my-run")  # run folder, checkpoint or export folder
    features = loaded.features(images)  # (B, 3, H, W) in [0, 1] -> (B, loaded.feature_dim)

:func:`~byol.downstream.detection.detection_backbone` and
:func:`~byol.downstream.segmentation.segmentation_model` turn a torchvision ResNet encoder
into torchvision detection and segmentation models.
"""

from byol.downstream.detection import detection_backbone
from byol.downstream.load import LoadedEncoder, load_encoder
from byol.downstream.segmentation import segmentation_model

__all__ = ["LoadedEncoder", "detection_backbone", "load_encoder", "segmentation_model"]
