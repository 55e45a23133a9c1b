"""One typed configuration for a BYOL run, with the paper's defaults.

Every default cites its source. ``[paper]`` is Grill et al., "Bootstrap Your Own Latent",
NeurIPS 2020 (arXiv 2006.07733); ``[official]`` is github.com/deepmind/deepmind-research,
folder ``byol/`` at commit d8df4155, paths relative to that folder.

The library defaults are the official 1000-epoch ImageNet recipe (``configs/byol.py``);
shorter runs and small images use the presets in :mod:`byol.presets`. YAML files and
command-line flags override these values through :mod:`byol.config_io`, which rejects
unknown keys and wrong types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ViewConfig:
    """Random augmentation of one view; every parameter is drawn per image.

    Defaults: [official] ``utils/augmentations.py:27-66`` and [paper] Appendix B, Table 6.
    """

    crop_scale_min: float = 0.08
    crop_scale_max: float = 1.0
    crop_ratio_min: float = 3.0 / 4.0
    crop_ratio_max: float = 4.0 / 3.0
    flip_prob: float = 0.5
    color_jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_prob: float = 0.2
    blur_prob: float = 1.0
    blur_sigma_min: float = 0.1
    blur_sigma_max: float = 2.0
    # Kernel side as a fraction of the image side: [official] uses side/10.
    blur_kernel_fraction: float = 0.1
    solarize_prob: float = 0.0
    solarize_threshold: float = 0.5


def _view1() -> ViewConfig:
    # [paper] Table 6, T: blur always, never solarize.
    return ViewConfig(blur_prob=1.0, solarize_prob=0.0)


def _view2() -> ViewConfig:
    # [paper] Table 6, T': blur 0.1, solarize 0.2.
    return ViewConfig(blur_prob=0.1, solarize_prob=0.2)


@dataclass
class AugmentConfig:
    """The two asymmetric views and the output normalisation.

    ``image_size``: side of the square crops; 224 in [official] ``utils/dataset.py:201``.
    ``mean``/``std``: ImageNet statistics, as [official] ``utils/helpers.py`` normalises images.
    ``backend``: ``batched`` augments whole uint8 batches on the training device,
    ``per_image`` uses the torchvision reference pipeline in DataLoader workers, ``auto`` picks
    ``batched`` whenever the dataset fits the uint8 cache.
    """

    image_size: int = 224
    view1: ViewConfig = field(default_factory=_view1)
    view2: ViewConfig = field(default_factory=_view2)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    backend: Literal["auto", "batched", "per_image"] = "auto"


@dataclass
class ModelConfig:
    """Backbone and heads.

    Heads: Linear(d -> 4096) -> BatchNorm -> ReLU -> Linear(4096 -> 256), no BatchNorm on the
    output ([official] ``configs/byol.py:40-42``, ``utils/networks.py:40-45``).
    ``batchnorm_momentum``: [official] decay 0.9 = PyTorch momentum 0.1, eps 1e-5
    (``configs/byol.py:47-56``).
    ``zero_init_residual``: [official] zero-initialises the last BatchNorm gamma of each residual
    block, the paper does not say so (official README); off by default as in the paper.
    ``cifar_stem``: 3x3 stride-1 stem without max-pool for 32 px images (as in SimCLR's CIFAR
    experiments, Chen et al. 2020, Appendix B.9, and solo-learn/lightly).
    """

    backbone: str = "resnet50"
    cifar_stem: bool = False
    feature_dim: int | None = None
    projector_hidden_dim: int = 4096
    projection_dim: int = 256
    predictor_hidden_dim: int = 4096
    batchnorm_momentum: float = 0.1
    batchnorm_eps: float = 1e-5
    zero_init_residual: bool = False
    sync_batchnorm: bool = True


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    LARS with momentum 0.9 and eta 1e-3 ([official] ``configs/byol.py:58-60``); biases and
    normalisation parameters excluded from weight decay and adaptation
    (``utils/optimizers.py:30-35``). lr = base_learning_rate * batch_size / 256
    (``utils/schedules.py:34``), linear warm-up for 10 epochs then cosine to 0
    (``configs/byol.py:64``). base lr 0.2 and weight decay 1.5e-6 are the 1000-epoch values
    (``configs/byol.py:21-22``).
    ``batch_size``: the global batch, over all processes (each takes ``batch_size / processes``);
    the learning rate scales with it, so a run keeps its recipe when the process count changes.
    ``gradient_accumulation_steps``: k > 1 splits each process's share into k micro-batches,
    backpropagates each, and takes one optimiser and one EMA step per global batch (schedules
    count those steps). Not the same as a k times larger batch: BatchNorm normalises each
    micro-batch with its own statistics.
    """

    optimizer: Literal["lars", "sgd", "adamw"] = "lars"
    base_learning_rate: float = 0.2
    weight_decay: float = 1.5e-6
    momentum: float = 0.9
    lars_eta: float = 1e-3
    # solo-learn's clip_lr; the official LARS has no cap (utils/optimizers.py:91-103).
    lars_trust_clip: bool = False
    warmup_epochs: float = 10.0
    batch_size: int = 4096
    gradient_accumulation_steps: int = 1


@dataclass
class TargetConfig:
    """Target network EMA: tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2.

    tau_base 0.996 for 1000 epochs ([official] ``configs/byol.py:23``, ``utils/schedules.py:20-24``).
    """

    tau_base: float = 0.996


@dataclass
class DataConfig:
    """Where the images come from.

    ``source``: a folder of images, ``cifar10`` or ``digits`` (the embedded default).
    ``cache_dir``: where decoded uint8 caches and unpacked archives go.
    ``cache_size``: side of the cached images; None keeps native size for fixed-size datasets
    and uses ``ceil(image_size * 256 / 224)`` for folders.
    ``val_source``: a labelled split for k-NN monitoring during training (optional).
    """

    source: str = "digits"
    cache_dir: str = "~/.cache/byol"
    cache_size: int | None = None
    val_source: str | None = None
    num_workers: int = 2
    max_images: int | None = None


@dataclass
class MonitorConfig:
    """Training monitors (k-NN on a validation split, collapse detection).

    k-NN protocol: k=200, temperature 0.1, cosine similarity (Wu et al. 2018; as used by DINO and
    lightly's benchmarks).
    ``online_classifier``: train a linear classifier on the detached encoder features of view 1
    while pre-training, when the training images have class labels ([official]
    ``byol_experiment.py:163-175``); its accuracy on the training views is logged every epoch
    and on the validation split at every k-NN evaluation. It never changes the encoder.
    """

    knn_every_epochs: int = 0
    online_classifier: bool = True
    knn_k: int = 200
    knn_temperature: float = 0.1
    collapse_std_threshold: float = 0.1
    stop_on_collapse: bool = False


@dataclass
class TrainConfig:
    """The training run.

    ``epochs``: 1000 ([official] ``main_loop.py:36-37``).
    ``precision``: ``bf16-mixed`` where the hardware has it, ``32-true`` otherwise (``auto``).
    ``checkpoint_every_epochs``: write ``checkpoints/epoch-NNNN.pt`` (and ``last.pt``).
    ``checkpoint_every_steps``: also refresh ``last.pt`` every so many steps inside an epoch, so
    a crash loses at most that many steps (None: only at epoch ends).
    ``compile``: ``torch.compile`` the model and, on the batched data path, the augmentation
    (off: compiling takes a minute or more, which pays off on GPUs, where the eager 32 px
    pipeline is bound by kernel launches).
    ``nonfinite``: what a step with a non-finite loss does: ``stop`` the run (noticed at the
    next log step or checkpoint, which is never written) or ``skip`` the step (its gradients
    are zeroed on the device and the skipped steps counted in the log).
    """

    epochs: int = 1000
    seed: int = 0
    output_dir: str = "runs"
    run_name: str | None = None
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    log_every_steps: int = 10
    checkpoint_every_epochs: int = 1
    checkpoint_every_steps: int | None = None
    max_steps: int | None = None
    nonfinite: Literal["stop", "skip"] = "stop"


@dataclass
class Config:
    """Everything a run needs; saved as ``config.yaml`` in every run folder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
