"""Named starting configurations; YAML files and flags override them.

Presets follow the run length: :func:`preset` takes the number of epochs (the CLI passes
``--train.epochs``) and picks the recipe measured at that length.

* ``imagenet-40/100/300/1000``: [official] ``configs/byol.py:21-23`` (base lr, weight decay,
  tau_base per run length).
* ``cifar10``: ResNet-18 with the CIFAR stem at 32 px; the optimiser recipe by run length:

  - from 1000 epochs (the default): solo-learn's recipe (vturrisi/solo-learn
    ``scripts/pretrain/cifar/byol.yaml`` at 4d64ac0: LARS lr 1.0, eta 0.02 with clip_lr, weight
    decay 1e-5, warm-up 10 epochs, heads 4096), 92.58% linear top-1 after 1000 epochs
    (solo-learn README);
  - from 100 to 999 epochs: lightly's CIFAR-10 benchmark recipe (lightly-ai/lightly
    ``docs/source/getting_started/benchmarks/cifar10_benchmark.py``, ``BYOLModel``: SGD
    momentum 0.9, lr 0.06 x batch/128 for its loss -(cos1 + cos2)/2, weight decay 5e-4, no
    warm-up, momentum 0.99, heads 1024), measured by lightly at 86.9% (batch 128) / 86.8%
    (batch 512) k-NN after 200 epochs and 91.0% after 800, where the LARS recipe compressed to
    130 epochs reached 74.95% (``benchmarks/results/2026-11-25-cifar10-h100-130ep``);
  - below 100 epochs: the LARS recipe again at a quarter of its learning rate (base 0.25),
    warm-up a tenth of the run, batch 64. At 10 epochs LARS led the SGD recipe at every
    evaluation (``benchmarks/results/2026-12-02-cifar10-equal-epochs``), whose small rate has
    too few steps to work with; at batch 256 and 390 steps the full base rate of 1.0 collapsed
    (k-NN falling from 28.6% to 25.0%, below the random encoder's 27.9%;
    ``benchmarks/results/2026-12-02-cifar10-short-runs``). Batch 64 against 256 gave the run
    four times the steps and 2.81 points more k-NN on average over three seeds
    (``benchmarks/results/2026-12-04-cifar10-batch-size``); at batch 64, base 0.25 was level
    with 0.1 on 10,000 images and 2.54 points ahead on the 50,000 of the 30-minute benchmark
    (``benchmarks/results/2026-12-04-cifar10-30min-learning-rate``).
* ``images``: a user's own folder: ResNet-18 with the ImageNet stem at 96 px, the paper's views
  (blur included) and the ``cifar10`` recipe for the run length, 100 epochs by default.
* ``digits``: the quick-start on the embedded scikit-learn digits.
"""

from __future__ import annotations

from collections.abc import Callable

from byol.augment import small_image_augment_config
from byol.config import Config

# epochs -> (base learning rate, weight decay, tau_base): [official] configs/byol.py:21-23.
IMAGENET_RUN_LENGTHS: dict[int, tuple[float, float, float]] = {
    40: (0.45, 1e-6, 0.97),
    100: (0.45, 1e-6, 0.99),
    300: (0.3, 1e-6, 0.99),
    1000: (0.2, 1.5e-6, 0.996),
}


def imagenet(epochs: int = 1000) -> Config:
    """The official ImageNet recipe for a run of 40, 100, 300 or 1000 epochs."""
    if epochs not in IMAGENET_RUN_LENGTHS:
        raise ValueError(
            f"no official ImageNet preset for {epochs} epochs; choose one of "
            f"{sorted(IMAGENET_RUN_LENGTHS)}"
        )
    base_learning_rate, weight_decay, tau_base = IMAGENET_RUN_LENGTHS[epochs]
    config = Config()
    config.train.epochs = epochs
    config.optim.base_learning_rate = base_learning_rate
    config.optim.weight_decay = weight_decay
    config.target.tau_base = tau_base
    config.data.source = "imagenet"
    return config


# lightly's lr 0.06 x batch/128 is for -(cos1 + cos2) / 2, whose gradient is a quarter of the
# paper's (2 - 2 cos1) + (2 - 2 cos2) used here: 0.03 x batch/256 takes the same SGD step.
SGD_LEARNING_RATE = 0.03
SGD_WEIGHT_DECAY = 5e-4
SGD_HEAD_WIDTH = 1024
# Run lengths (epochs) from which each recipe's measured figure is the better one: LARS below
# SGD_FROM_EPOCHS (measured side by side at 10 epochs), lightly's SGD recipe up to
# LARS_FROM_EPOCHS (lightly's 200- and 800-epoch figures), solo-learn's LARS recipe from there.
SGD_FROM_EPOCHS = 100
LARS_FROM_EPOCHS = 1000
# solo-learn's base rate, and the rate measured for runs below SGD_FROM_EPOCHS: 1.0 collapsed
# a 390-step run at batch 256 (benchmarks/results/2026-12-02-cifar10-short-runs); at batch 64,
# 0.25 and 0.1 were level on 10,000 images (2026-12-04-cifar10-batch-size) and on the 50,000
# images of the 30-minute CPU benchmark (8,026 steps, 10.3 epochs) 0.25 gave 47.11% k-NN
# against 0.1's 44.57% and 0.5's 45.66% (2026-12-04-cifar10-30min-learning-rate). At batch 256
# (the `images` preset's), 0.25 trained a 390-step run but one seed in two barely did, which
# 0.1 did not (2026-12-03-cifar10-learning-rate): the short-run rate is the one measured at the
# preset's batch.
LARS_LEARNING_RATE = 1.0
SHORT_RUN_LARS_LEARNING_RATE = 0.25
SHORT_RUN_LARS_LEARNING_RATE_AT_RECIPE_BATCH = 0.1
# The cifar10 batch below SGD_FROM_EPOCHS: at 10 epochs of 10,000 images, batch 64 (1,560
# steps) led 256 (390 steps) on each of three seeds, by 2.81 points k-NN on average (128: 1.60),
# at the same images/s on a CPU (benchmarks/results/2026-12-04-cifar10-batch-size). A short run
# is short of steps; a longer one keeps the batch of the recipes it follows. Batch 32 gained
# 0.61 more over two seeds, within their spread, at 12% fewer images/s (same results).
SHORT_RUN_BATCH_SIZE = 64
RECIPE_BATCH_SIZE = 256


def sgd_recipe(config: Config) -> None:
    """SGD, momentum 0.9, weight decay 5e-4, no warm-up, tau 0.99, heads 1024 (lightly's
    CIFAR-10 benchmark recipe, cited in the module docstring), in place."""
    config.optim.optimizer = "sgd"
    config.optim.base_learning_rate = SGD_LEARNING_RATE
    config.optim.weight_decay = SGD_WEIGHT_DECAY
    config.optim.momentum = 0.9
    config.optim.warmup_epochs = 0.0
    config.target.tau_base = 0.99
    config.model.projector_hidden_dim = SGD_HEAD_WIDTH
    config.model.predictor_hidden_dim = SGD_HEAD_WIDTH


def lars_recipe(config: Config, epochs: int) -> None:
    """solo-learn's CIFAR recipe (cited in the module docstring), in place; its 10-epoch
    warm-up is cut to a tenth of shorter runs, and runs shorter than ``SGD_FROM_EPOCHS`` take
    the short-run rate measured at ``config.optim.batch_size`` (set before this is called)."""
    config.optim.optimizer = "lars"
    if epochs >= SGD_FROM_EPOCHS:
        config.optim.base_learning_rate = LARS_LEARNING_RATE
    elif config.optim.batch_size <= SHORT_RUN_BATCH_SIZE:
        config.optim.base_learning_rate = SHORT_RUN_LARS_LEARNING_RATE
    else:
        config.optim.base_learning_rate = SHORT_RUN_LARS_LEARNING_RATE_AT_RECIPE_BATCH
    config.optim.weight_decay = 1e-5
    config.optim.lars_eta = 0.02
    config.optim.lars_trust_clip = True
    config.optim.warmup_epochs = min(10.0, epochs / 10)
    config.target.tau_base = 0.99


def recipe_for_run_length(config: Config, epochs: int) -> None:
    """The optimiser recipe measured best at ``epochs`` (see the constants above), in place."""
    if SGD_FROM_EPOCHS <= epochs < LARS_FROM_EPOCHS:
        sgd_recipe(config)
    else:
        lars_recipe(config, epochs)
    config.train.epochs = epochs


def cifar10(epochs: int = LARS_FROM_EPOCHS) -> Config:
    """ResNet-18 with the CIFAR stem on 32 px CIFAR-10, the recipe chosen by ``epochs``."""
    config = Config()
    config.model.backbone = "resnet18"
    config.model.cifar_stem = True
    config.augment = small_image_augment_config(32)
    config.optim.batch_size = (
        SHORT_RUN_BATCH_SIZE if epochs < SGD_FROM_EPOCHS else RECIPE_BATCH_SIZE
    )
    recipe_for_run_length(config, epochs)
    config.data.source = "cifar10"
    config.data.val_source = "cifar10"
    config.monitor.knn_every_epochs = max(1, min(10, epochs // 10))
    return config


def images(epochs: int = SGD_FROM_EPOCHS) -> Config:
    """A user's own images: ResNet-18 at 96 px, the paper's views, the recipe for ``epochs``."""
    config = Config()
    config.model.backbone = "resnet18"
    config.augment.image_size = 96
    config.optim.batch_size = RECIPE_BATCH_SIZE
    recipe_for_run_length(config, epochs)
    return config


def digits(epochs: int = 60) -> Config:
    """Quick-start: a narrow ResNet on the 1,797 bundled digits, about 3 minutes on 2 cores.

    Sizes are ours, chosen for two CPU cores: a width-8 ResNet-18, 512-wide heads, batch 64,
    16 px crops of the 32 px digits, 60 epochs. The views keep the paper's operations, except
    that flips are off (digits are not mirror-symmetric) and crops keep at least 70% of the
    image: on 8x8 digits smaller crops cut away the strokes that tell digits apart (crop scale
    0.3 / 0.5 / 0.7 gave 89% / 94% / 96% k-NN mid-run).

    tau_base follows the run length as in the official presets (configs/byol.py: 0.97 for 40
    epochs, 0.99 from 100), chosen here by measurement
    (benchmarks/results/2026-12-02-digits-quickstart-w8): at 60 epochs with width 8 and lr 1.0,
    tau_base 0.99 / 0.97 / 0.95 / 0.9 gave k-NN 92.4% / 95.6% / 96.4% / 96.0% and 10-label
    linear probes 89.6% / 91.8% / 92.2% / 91.6% (raw pixels 97.6% and 88.0%). Width 16 takes
    2.6 times as long per epoch; 8 px crops were worse (10-label probe 88.4%).
    base_learning_rate is half the other presets' 1.0: at 1.0 one run in four (seed 2 on two
    threads) collapsed early (projection effective rank 4.7 after 80 steps, 10-label probe 12.4
    points below the pixels); at 0.5 four seeds of four beat the pixels with 10 labels per
    class (+2.2 to +7.3 points). 100 epochs and more at width 8 are not measured.
    """
    config = Config()
    config.model.backbone = "small_resnet18_w8"
    config.model.projector_hidden_dim = 512
    config.model.predictor_hidden_dim = 512
    config.model.projection_dim = 128
    config.augment = small_image_augment_config(16)
    for view in (config.augment.view1, config.augment.view2):
        view.flip_prob = 0.0
        view.crop_scale_min = 0.7
    config.optim.optimizer = "lars"
    config.optim.base_learning_rate = 0.5
    config.optim.lars_eta = 0.02
    config.optim.lars_trust_clip = True
    config.optim.weight_decay = 1e-5
    config.optim.batch_size = 64
    config.optim.warmup_epochs = 2
    config.target.tau_base = 0.97 if epochs < 100 else 0.99
    config.train.epochs = epochs
    config.train.checkpoint_every_epochs = 20
    config.data.source = "digits"
    config.data.val_source = "digits"
    config.monitor.knn_every_epochs = 20
    config.monitor.knn_k = 20
    # On 1,347 digits the probe takes seconds, and it is the paper's own measure.
    config.monitor.final_linear_probe = True
    # Few labels are where the features beat the pixels: +2.2 to +7.3 points with 10 per class
    # for each of four seeds (benchmarks/results/2026-12-02-digits-quickstart-w8).
    config.monitor.final_linear_probe_labels_per_class = 10
    return config


# name -> builder taking the run length (None: the preset's own).
PRESETS: dict[str, Callable[[int | None], Config]] = {
    "imagenet-40": lambda epochs: imagenet(40),
    "imagenet-100": lambda epochs: imagenet(100),
    "imagenet-300": lambda epochs: imagenet(300),
    "imagenet-1000": lambda epochs: imagenet(1000),
    "cifar10": lambda epochs: cifar10() if epochs is None else cifar10(epochs),
    "images": lambda epochs: images() if epochs is None else images(epochs),
    "digits": lambda epochs: digits() if epochs is None else digits(epochs),
}


def preset(name: str, epochs: int | None = None) -> Config:
    """A fresh :class:`Config` for the named preset, its recipe chosen for ``epochs`` (None:
    the preset's own run length; the ImageNet presets have theirs in their names)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise ValueError(f"epochs={epochs!r} must be a positive whole number")
    return PRESETS[name](epochs)


def preset_for_data(source: str | None) -> str:
    """The preset a ``byol train DATA`` run starts from when no ``--preset`` is given: the
    named data set's own recipe (``digits``, ``cifar10``), ``images`` for a folder (or shards),
    and the ``digits`` quick-start when there is no data argument."""
    if source is None:
        return "digits"
    if source in ("digits", "cifar10"):
        return source
    return "images"
