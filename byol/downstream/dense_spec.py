"""What ``byol downstream`` builds: the architectures and their settings (no torch here, so the
command line reads them at once)."""

from __future__ import annotations

from dataclasses import dataclass

DETECTORS = ("fasterrcnn", "maskrcnn", "retinanet")
SEGMENTERS = ("deeplabv3", "fcn")
ARCHITECTURES = DETECTORS + SEGMENTERS


@dataclass(frozen=True)
class DenseModelSpec:
    """How a dense model is built: ``architecture`` (one of :data:`ARCHITECTURES`),
    ``num_classes`` (background included), and for detectors ``trainable_layers`` (0-5, from
    ``layer4`` down), for segmenters ``aux`` (an FCN head on ``layer3``) and
    ``output_stride`` (8, 16 or 32)."""

    architecture: str
    num_classes: int
    trainable_layers: int = 3
    aux: bool = False
    output_stride: int = 8

    def check(self) -> None:
        """Raises ValueError naming the bad field and the values it takes."""
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture={self.architecture!r} must be one of {', '.join(ARCHITECTURES)}"
            )
        count = self.num_classes
        # A detector's class 0 is the background, so it needs one more; a segmenter may have a
        # single (foreground) logit.
        least = 2 if self.architecture in DETECTORS else 1
        if isinstance(count, bool) or not isinstance(count, int) or count < least:
            raise ValueError(
                f"num_classes={count!r} must be an integer >= {least} for "
                f"{self.architecture} (background included: 91 for COCO detection, 21 for "
                "Pascal VOC segmentation)"
            )


def check_weights_path(out: str) -> None:
    """The file ``byol downstream`` writes must be a ``.safetensors`` file."""
    if not out.endswith(".safetensors"):
        raise ValueError(f"--out {out} must end in .safetensors (the weights file it writes)")
