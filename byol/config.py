"""One typed configuration for a BYOL run, with the paper's defaults.

Every default cites its source. ``[paper]`` is Grill et al., "Bootstrap Your Own Latent",
NeurIPS 2020 (arXiv 2006.07733); ``[official]`` is github.com/deepmind/deepmind-research,
folder ``byol/`` at commit d8df4155, paths relative to that folder.

Each field's docstring (the string under it) says what it does and where its default comes
from; ``byol train --help`` shows them (:func:`byol.config_io.field_docs`). The library
defaults are the official 1000-epoch ImageNet recipe (``configs/byol.py``); shorter runs and
small images use the presets in :mod:`byol.presets`. YAML files and command-line flags override
these values through :mod:`byol.config_io`, which rejects unknown keys and wrong types.
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
    """Smallest random-resized-crop area, as a fraction of the image ([official] 0.08)."""
    crop_scale_max: float = 1.0
    """Largest crop area, as a fraction of the image ([official] 1.0)."""
    crop_ratio_min: float = 3.0 / 4.0
    """Smallest crop aspect ratio, width / height ([official] 3/4)."""
    crop_ratio_max: float = 4.0 / 3.0
    """Largest crop aspect ratio ([official] 4/3)."""
    flip_prob: float = 0.5
    """Probability of a horizontal flip ([paper] Table 6: 0.5)."""
    color_jitter_prob: float = 0.8
    """Probability of colour jitter ([paper] Table 6: 0.8)."""
    brightness: float = 0.4
    """Colour jitter: maximum brightness change ([paper] Table 6: 0.4)."""
    contrast: float = 0.4
    """Colour jitter: maximum contrast change ([paper] Table 6: 0.4)."""
    saturation: float = 0.2
    """Colour jitter: maximum saturation change ([paper] Table 6: 0.2)."""
    hue: float = 0.1
    """Colour jitter: maximum hue shift ([paper] Table 6: 0.1)."""
    grayscale_prob: float = 0.2
    """Probability of converting to grayscale ([paper] Table 6: 0.2)."""
    blur_prob: float = 1.0
    """Probability of Gaussian blur ([paper] Table 6: 1.0 in view 1, 0.1 in view 2)."""
    blur_sigma_min: float = 0.1
    """Smallest blur sigma ([paper] Table 6: 0.1)."""
    blur_sigma_max: float = 2.0
    """Largest blur sigma ([paper] Table 6: 2.0)."""
    blur_kernel_fraction: float = 0.1
    """Blur kernel side as a fraction of the image side ([official] uses side / 10)."""
    solarize_prob: float = 0.0
    """Probability of solarization ([paper] Table 6: 0.0 in view 1, 0.2 in view 2)."""
    solarize_threshold: float = 0.5
    """Pixel value (0-1) above which solarization inverts ([official] 0.5)."""


def _view1() -> ViewConfig:
    # [paper] Table 6, T: blur always, never solarize.
    return ViewConfig(blur_prob=1.0, solarize_prob=0.0)


def _view2() -> ViewConfig:
    # [paper] Table 6, T': blur 0.1, solarize 0.2.
    return ViewConfig(blur_prob=0.1, solarize_prob=0.2)


@dataclass
class AugmentConfig:
    """The two asymmetric views and the output normalisation."""

    image_size: int = 224
    """Side of the square crops, in pixels ([official] ``utils/dataset.py:201``: 224); also the
    side at which the encoder is evaluated."""
    view_size: int | None = None
    """Side of the training views; None: ``image_size``. A side below ``image_size`` trains
    at a fraction of the compute per step: random-resized crops make objects look larger in
    training than in the whole test image, so the network meets them at the evaluation side at
    about their trained size (Touvron et al. 2019, "Fixing the train-test resolution
    discrepancy"). Evaluation, export and the k-NN monitor stay at ``image_size``."""
    view1: ViewConfig = field(default_factory=_view1)
    """The first view, T in [paper] Table 6: blur always, never solarize."""
    view2: ViewConfig = field(default_factory=_view2)
    """The second view, T' in [paper] Table 6: blur 0.1, solarize 0.2."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    """Per-channel mean subtracted after augmentation (ImageNet's, as [official]
    ``utils/helpers.py`` normalises)."""
    std: tuple[float, float, float] = IMAGENET_STD
    """Per-channel standard deviation divided by after augmentation (ImageNet's, as
    [official] ``utils/helpers.py``)."""
    backend: Literal["auto", "batched", "per_image"] = "auto"
    """``batched``: augment whole uint8 batches on the training device; ``per_image``: the
    torchvision reference pipeline in DataLoader workers; ``auto``: ``batched`` whenever the
    data set fits the uint8 cache (ours)."""


@dataclass
class ModelConfig:
    """Backbone and heads: Linear(d -> 4096) -> BatchNorm -> ReLU -> Linear(4096 -> 256), no
    BatchNorm on the output ([official] ``configs/byol.py:40-42``, ``utils/networks.py:40-45``).
    """

    backbone: str = "resnet50"
    """Encoder architecture by name ([paper] Section 3.3: ResNet-50)."""
    cifar_stem: bool = False
    """Replace a torchvision ResNet's 7x7 stride-2 stem and max-pool with a 3x3 stride-1
    convolution, for 32 px images (SimCLR, Chen et al. 2020, Appendix B.9); the small ResNets
    always have that stem, timm models refuse it."""
    feature_dim: int | None = None
    """Encoder output size; None reads what the backbone declares."""
    projector_hidden_dim: int = 4096
    """Hidden width of the projector MLP ([official] ``configs/byol.py:40``: 4096)."""
    projection_dim: int = 256
    """Output size of projector and predictor ([official] ``configs/byol.py:41``: 256)."""
    predictor_hidden_dim: int = 4096
    """Hidden width of the predictor MLP ([official] ``configs/byol.py:42``: 4096)."""
    batchnorm_momentum: float = 0.1
    """BatchNorm running-average momentum ([official] decay 0.9 = PyTorch momentum 0.1,
    ``configs/byol.py:47-56``)."""
    batchnorm_eps: float = 1e-5
    """BatchNorm epsilon ([official] ``configs/byol.py:47-56``: 1e-5)."""
    zero_init_residual: bool = False
    """Zero the last BatchNorm gamma of each residual block; [official] does, the paper does
    not say so (official README), so off as in the paper."""
    sync_batchnorm: bool = True
    """Normalise over the global batch across processes, as [official]
    ``configs/byol.py:47-56``."""


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule: lr = base_learning_rate * batch_size / 256
    ([official] ``utils/schedules.py:34``), linear warm-up then cosine to 0
    (``configs/byol.py:64``).
    """

    optimizer: Literal["lars", "sgd", "adamw"] = "lars"
    """``lars`` ([official] ``configs/byol.py:58-60``; biases and normalisation parameters
    excluded from weight decay and adaptation, ``utils/optimizers.py:30-35``), ``sgd`` or
    ``adamw``."""
    base_learning_rate: float = 0.2
    """Learning rate per 256 images of batch ([official] ``configs/byol.py:21``: 0.2 for 1000
    epochs)."""
    weight_decay: float = 1.5e-6
    """Weight decay ([official] ``configs/byol.py:22``: 1.5e-6 for 1000 epochs)."""
    momentum: float = 0.9
    """Momentum ([official] ``configs/byol.py:58``: 0.9)."""
    lars_eta: float = 1e-3
    """LARS trust coefficient ([official] ``configs/byol.py:60``: 1e-3)."""
    lars_trust_clip: bool = False
    """Cap the LARS trust ratio at the learning rate (solo-learn's clip_lr); [official] LARS
    has no cap (``utils/optimizers.py:91-103``)."""
    warmup_epochs: float = 10.0
    """Epochs of linear learning-rate warm-up ([official] ``configs/byol.py:64``: 10)."""
    batch_size: int = 4096
    """The global batch, over all processes, each taking ``batch_size / processes``; the
    learning rate scales with it ([paper] Section 3.3: 4096)."""
    gradient_accumulation_steps: int = 1
    """k > 1 splits each process's share into k micro-batches with one optimiser and EMA step
    per global batch; BatchNorm still normalises each micro-batch alone (ours)."""


@dataclass
class TargetConfig:
    """Target network EMA: tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2
    ([official] ``utils/schedules.py:20-24``)."""

    tau_base: float = 0.996
    """Starting EMA decay, rising to 1 by the end ([official] ``configs/byol.py:23``: 0.996
    for 1000 epochs)."""


@dataclass
class DataConfig:
    """Where the images come from."""

    source: str = "digits"
    """A folder of images (recursively), tar shards from ``byol shard``, ``cifar10`` or
    ``digits`` (the bundled scikit-learn digits, ours: no download)."""
    cache_dir: str = "~/.cache/byol"
    """Where decoded uint8 caches and unpacked archives go."""
    cache_size: int | None = None
    """Side of the cached images; None keeps the native size of fixed-size data sets and uses
    ceil(image_size * 256 / 224) for folders."""
    val_source: str | None = None
    """A labelled data set for k-NN monitoring during training; None: no monitoring."""
    num_workers: int = 2
    """Data-loading worker processes (the per-image path and folder decoding)."""
    max_images: int | None = None
    """Use a class-balanced subset of this many images; None: all."""


@dataclass
class MonitorConfig:
    """Training monitors: k-NN on a validation split (cosine similarity, Wu et al. 2018, as used
    by DINO and lightly's benchmarks) and collapse detection."""

    knn_every_epochs: int = 0
    """Run the k-NN evaluation every so many epochs; 0: never."""
    online_classifier: bool = True
    """Train a linear classifier on the detached encoder features of view 1 while pre-training,
    when the training images have class labels ([official] ``byol_experiment.py:163-175``); its
    accuracy is logged every epoch (training views) and at every k-NN evaluation (validation
    split). It never changes the encoder."""
    final_linear_probe: bool = False
    """At the end of the run, also fit the fast linear probe (L2-regularised logistic regression
    on frozen features, :func:`byol.eval.linear.linear_probe`) on the validation split for the
    encoder, the raw pixels and a random encoder, and report the three top-1s beside the k-NN
    figures; it costs three feature passes and three fits (seconds on the digits, minutes on
    CIFAR-10), so only the digits preset turns it on (ours)."""
    final_linear_probe_labels_per_class: int | None = None
    """With ``final_linear_probe``, fit it once more on this many labelled images per class
    (a class-balanced subset of the validation split's training images, seeded by
    ``train.seed``), the paper's few-label setting, for the same three; None: all labels only.
    The same figures as ``byol eval linear --labels-per-class N --label-seed SEED``."""
    knn_k: int = 200
    """Neighbours of the k-NN classifier (Wu et al. 2018: 200)."""
    knn_temperature: float = 0.1
    """Softmax temperature of the weighted k-NN vote (Wu et al. 2018: 0.1)."""
    collapse_std_threshold: float = 0.1
    """Warn of collapse when the projections' std (``projection_std``, about 1/sqrt(D) when
    spread out, 0 when collapsed) stays below this fraction of 1/sqrt(D) (ours)."""
    stop_on_collapse: bool = False
    """Stop the run, saving ``collapsed.pt``, when collapse is detected."""
    eval_batch_size: int = 512
    """Images per batch when encoding images for k-NN, probes and ``byol embed`` (ours)."""


@dataclass
class TrainConfig:
    """The training run."""

    epochs: int = 1000
    """Passes over the data ([official] ``main_loop.py:36-37``: 1000)."""
    seed: int = 0
    """Seed of weights, batches and augmentations."""
    output_dir: str = "runs"
    """Folder that receives the run folders."""
    run_name: str | None = None
    """Name of the run folder; None: ``byol-YYYYMMDD-HHMMSS``."""
    accelerator: str = "auto"
    """Lightning Fabric accelerator: ``auto``, ``cpu``, ``cuda``/``gpu`` or ``mps``."""
    devices: str = "auto"
    """Processes (devices) per machine: a number, a list such as ``0,1``, or ``auto``."""
    num_nodes: int = 1
    """Machines the run spans."""
    strategy: str = "auto"
    """Lightning Fabric strategy: ``auto``, ``ddp``, ...."""
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    """``auto``: ``bf16-mixed`` where the hardware has bfloat16, else ``32-true``."""
    channels_last: bool = True
    """Keep convolution weights and activations in channels-last memory layout (faster)."""
    compile: bool = False
    """``torch.compile`` the model and, on the batched path, the augmentation; compiling takes
    a minute or more and pays off on GPUs, whose eager 32 px loop is bound by kernel launches."""
    deterministic: bool = False
    """Use deterministic algorithms, so a resumed run ends with the same weights."""
    num_threads: int | None = None
    """CPU threads of torch's operations; None: torch's default, at most the CPUs this process
    may use (``os.sched_getaffinity``)."""
    log_every_steps: int = 10
    """Write a metrics row (and a progress line) every so many steps."""
    checkpoint_every_epochs: int = 1
    """Write ``checkpoints/epoch-NNNN.pt`` (and ``last.pt``) every so many epochs."""
    checkpoint_every_steps: int | None = None
    """Also refresh ``last.pt`` every so many steps inside an epoch, so a crash loses at most
    that many; None: only at epoch ends."""
    max_steps: int | None = None
    """Train at most this many steps in all; the learning-rate and tau schedules end there.
    None: ``epochs`` decides."""
    nonfinite: Literal["stop", "skip"] = "stop"
    """A step with a non-finite loss: ``stop`` the run (noticed at the next log step or
    checkpoint, which is never written) or ``skip`` it (gradients zeroed, counted in the log)."""


@dataclass
class LinearEvalConfig:
    """The official linear evaluation of a frozen encoder (``byol eval linear --protocol
    official``): a linear layer trained with SGD on random resized crops and flips. Not part of
    a run's :class:`Config`; [official] ``configs/eval.py:29-45``, [paper] Appendix C.1."""

    epochs: int = 80
    """Passes over the training split ([official] ``configs/eval.py``: 80)."""
    base_learning_rate: float = 0.2
    """Learning rate per 256 images of batch, decayed by a cosine to 0 without warm-up
    ([official] ``configs/eval.py``: 0.2)."""
    momentum: float = 0.9
    """SGD momentum ([official] ``configs/eval.py``: 0.9)."""
    nesterov: bool = True
    """Nesterov momentum ([official] ``configs/eval.py``: True)."""
    weight_decay: float = 0.0
    """Weight decay of the linear layer ([official] ``configs/eval.py``: 0)."""


@dataclass
class ShardConfig:
    """``byol shard``: how a data set is written as tar shards (ours)."""

    images_per_shard: int = 1000
    """Images per tar file."""


@dataclass
class Config:
    """Everything a run needs; saved as ``config.yaml`` in every run folder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Backbone and heads."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """The two augmented views."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and learning-rate schedule."""
    target: TargetConfig = field(default_factory=TargetConfig)
    """The target network's moving average."""
    data: DataConfig = field(default_factory=DataConfig)
    """Where the images come from."""
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    """k-NN monitoring and collapse detection."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training run: length, hardware, logging, checkpoints."""
