"""``byol finetune`` and the evaluation flags for few labels and transfer (parsing only).

No torch here: ``--help`` answers at once. The command itself is
:func:`byol.cli.finetune_run.run_finetune`.
"""

from __future__ import annotations

import argparse
from typing import Any

from byol.config_io import field_docs
from byol.downstream.finetune_config import (
    LARGE_IMAGE_WEIGHT_DECAY,
    SMALL_IMAGE_SIDE,
    SMALL_IMAGE_WEIGHT_DECAY,
    FinetuneConfig,
    field_names,
)

RECIPE = (
    "Default recipe: SGD with Nesterov momentum 0.9 on random resized crops (scale 0.08-1, at "
    "the evaluation image size) and horizontal flips, the paper's fine-tuning protocol "
    "([paper] Appendix C.2 semi-supervised, D.3 transfer); a linear warm-up of 1 epoch, then "
    f"cosine decay to 0; the head's learning rate {FinetuneConfig().head_lr_multiplier:g}x "
    f"the backbone's; weight decay {SMALL_IMAGE_WEIGHT_DECAY:g} up to {SMALL_IMAGE_SIDE} px, "
    f"{LARGE_IMAGE_WEIGHT_DECAY:g} above; no label smoothing (warm-up, cosine, head rate and "
    "weight decay: common fine-tuning practice, ours)."
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none (None: the help says what then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_image_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--image-size S``: evaluate at another size than the run's (transfer)."""
    parser.add_argument(
        "--image-size",
        type=int,
        metavar="S",
        help="side of the images the encoder sees (default: the run's augment.image_size). "
        "Folders: shorter side resized to ceil(S*256/224), centre crop S; digits and cifar10: "
        "the whole 32 px image resized to S. The JSON output states the policy "
        "(resize_policy)",
    )


def add_label_subset_arguments(parser: argparse.ArgumentParser) -> None:
    """``--label-fraction`` / ``--labels-per-class`` / ``--label-seed``: few-label runs."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--label-fraction",
        type=float,
        metavar="F",
        help="train on a seeded, class-balanced share F of the training labels (0.01 and 0.1: "
        "the paper's 1%% and 10%%, [paper] Table 2); every class keeps round(F x its size), at "
        "least 1; the images used are listed in labels_used.txt beside the result",
    )
    group.add_argument(
        "--labels-per-class",
        type=int,
        metavar="N",
        help="train on N seeded random images per class (all of a smaller class); listed in "
        "labels_used.txt beside the result",
    )
    parser.add_argument(
        "--label-seed",
        type=int,
        default=0,
        help="seed of the label subset (one seed: the 1%% subset lies inside the 10%% one)",
    )


def add_finetune_parser(sub: Any) -> None:
    """Register ``byol finetune`` on the sub-command action ``sub``."""
    finetune = sub.add_parser(
        "finetune",
        help="fine-tune the whole encoder plus a linear head on labelled data",
        formatter_class=_Formatter,
        description="Fine-tune the encoder of a checkpoint (or, with --from-scratch, the same "
        "network from random weights) together with a linear head on labelled data with "
        "train/ and test/ splits; print test top-1/top-5 as JSON and write results.json, "
        f"classifier.safetensors, classifier.json and resnet.pth (torchvision ResNets) into "
        f"--out. {RECIPE}",
    )
    finetune.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    finetune.add_argument(
        "--data",
        help="labelled data: a folder with train/ and test/ class sub-folders, 'cifar10' or "
        "'digits' (default: the run's data.val_source or data.source)",
    )
    finetune.add_argument(
        "--out",
        help="output folder (default: finetune/ or finetune-from-scratch/ in the run folder)",
    )
    finetune.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    add_image_size_argument(finetune)
    add_label_subset_arguments(finetune)
    _add_recipe_arguments(finetune)
    finetune.set_defaults(handler="finetune")


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`FinetuneConfig` field, its docstring as help."""
    defaults, docs = FinetuneConfig(), field_docs(FinetuneConfig)
    for name in field_names():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(flag, action=action, default=default, help=docs[name])
        elif name == "precision":
            choices = ("auto", "32-true", "bf16-mixed", "16-mixed")
            parser.add_argument(flag, choices=choices, default=default, help=docs[name])
        elif name == "weight_decay":
            parser.add_argument(flag, type=float, metavar="WD", help=docs[name])
        else:
            parser.add_argument(flag, type=type(default), default=default, help=docs[name])


def finetune_config(arguments: argparse.Namespace) -> FinetuneConfig:
    """The :class:`FinetuneConfig` the flags describe, checked."""
    return FinetuneConfig(**{name: getattr(arguments, name) for name in field_names()}).check()
