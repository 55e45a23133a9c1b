"""Entry point of the ``byol`` command.

Errors a user can fix (a missing folder, a bad config key, a refused checkpoint) end with one
line on stderr and exit status 2, never a traceback; a run that stops itself (a non-finite
loss, a checkpoint that cannot be written) or a failing machine (a full disk) exits with 1.

Arguments are parsed and the configuration checked before torch is imported, so ``--help``,
``--version`` and mistakes answer at once; the sub-commands live in :mod:`byol.cli.commands`.
Flags must be spelt out (no prefix abbreviations); an unknown one gets the nearest known one.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import byol
from byol.cli.config_flags import (
    PresetChoice,
    add_config_arguments,
    choose_preset,
    defaults_note,
    resolve_train_config,
)
from byol.cli.downstream import add_downstream_parser
from byol.cli.finetune import (
    add_finetune_parser,
    add_image_size_argument,
    add_label_subset_arguments,
)
from byol.config import DataConfig, LinearEvalConfig, MonitorConfig, ShardConfig
from byol.train.errors import TrainingStopped


class _Parser(argparse.ArgumentParser):
    """One-line errors; no prefix matching of flags; unknown flags get a suggestion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = "" if "--help" in message else f" (see {self.prog} --help)"
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = _chosen_parser(self, parsed)
            self.error(unknown_arguments_message(extras, chosen))
        return parsed


def unknown_arguments_message(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """``unrecognized arguments: --train.epoch 3; did you mean --train.epochs? (see ...)``."""
    known = [option for action in parser._actions for option in action.option_strings]
    flags = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
    suggestions = []
    for flag in flags:
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        if close:
            suggestions.append(
                f"did you mean {close[0]} for {flag}?"
                if len(flags) > 1
                else f"did you mean {close[0]}?"
            )
    hint = f"; {' '.join(suggestions)}" if suggestions else ""
    return f"unrecognized arguments: {' '.join(extras)}{hint} (see {parser.prog} --help)"


def _chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> Any:
    """The innermost sub-command parser that ``parsed`` went through."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(parsed, action.dest, None)
            if name in action.choices:
                return _chosen_parser(action.choices[name], parsed)
    return parser


def package_version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    try:
        return metadata.version("byol")
    except metadata.PackageNotFoundError:
        return byol.__version__


def add_split_argument(parser: argparse.ArgumentParser) -> None:
    """``--split``: which split of a named data set or a folder with train/ and test/."""
    parser.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="split of a named data set, or sub-folder of a folder with train/ and test/",
    )


def build_parser(train_preset: PresetChoice | None = None) -> argparse.ArgumentParser:
    """The ``byol`` parser; ``train --help`` shows the values of ``train_preset``."""
    parser = _Parser(prog="byol", description="BYOL self-supervised pre-training.")
    parser.add_argument("--version", action="version", version=f"byol {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub, train_preset or choose_preset(None, None))
    _add_eval(sub)
    add_finetune_parser(sub)
    add_downstream_parser(sub, argparse.ArgumentDefaultsHelpFormatter)
    _add_embed_export_report(sub)
    _add_shard(sub)
    return parser


def _add_train(sub: Any, shown: PresetChoice) -> None:
    train = sub.add_parser(
        "train",
        help="pre-train an encoder",
        usage="byol train [DATA] [--preset NAME] [--config FILE.yaml] "
        "[--section.field VALUE ...] [--resume RUN_DIR] [--no-progress]",
        add_help=False,  # --help is answered after parsing, with the preset the run would use
        description="Pre-train an encoder with BYOL on a folder of images, "
        "'cifar10' or 'digits'; then compare its k-NN accuracy with a "
        f"random encoder when labels exist. {defaults_note(shown)}",
    )
    train.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    train.add_argument(
        "data",
        nargs="?",
        help="image folder, shards folder, 'cifar10' or 'digits'; it also picks the preset "
        "(default: the preset's data.source)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR (a folder runs/<run>, or one of its checkpoints)",
    )
    train.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue even if the data differs from the checkpoint's",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    add_config_arguments(train, shown)
    train.set_defaults(handler="train")


def _add_eval(sub: Any) -> None:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    monitor = MonitorConfig()
    evaluate = sub.add_parser("eval", help="evaluate a checkpoint (k-NN or linear probe)")
    protocols = evaluate.add_subparsers(dest="protocol", required=True, parser_class=_Parser)
    knn = protocols.add_parser(
        "knn", help="weighted k-NN on frozen features", formatter_class=formatter
    )
    _add_eval_arguments(knn)
    knn.add_argument("--k", type=int, default=monitor.knn_k, help="neighbours")
    knn.add_argument(
        "--temperature", type=float, default=monitor.knn_temperature, help="softmax temperature"
    )
    add_image_size_argument(knn)
    add_label_subset_arguments(knn)
    knn.set_defaults(handler="eval_knn")
    linear = protocols.add_parser(
        "linear", help="linear probe on frozen features", formatter_class=formatter
    )
    _add_eval_arguments(linear)
    linear.add_argument(
        "--protocol",
        choices=("fast", "official"),
        default="fast",
        help="fast: cached features + logistic regression; official: 80 epochs "
        "of SGD with augmentation ([official] configs/eval.py)",
    )
    linear.add_argument(
        "--epochs",
        type=int,
        default=LinearEvalConfig().epochs,
        help="epochs of the official protocol",
    )
    linear.add_argument(
        "--out", help="where to save the classifier (default: next to the checkpoint)"
    )
    add_image_size_argument(linear)
    add_label_subset_arguments(linear)
    linear.set_defaults(handler="eval_linear")


def _add_embed_export_report(sub: Any) -> None:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    embed = sub.add_parser(
        "embed", help="encode a dataset into features (.npy + paths)", formatter_class=formatter
    )
    embed.add_argument("data", help="image folder, 'cifar10' or 'digits'")
    embed.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    embed.add_argument(
        "--out",
        required=True,
        help="output .npy file (image paths go beside it in .paths.txt, unreadable files in "
        ".skipped.txt)",
    )
    add_split_argument(embed)
    embed.add_argument(
        "--batch-size", type=int, default=MonitorConfig().eval_batch_size, help="images per batch"
    )
    embed.set_defaults(handler="embed")

    export = sub.add_parser(
        "export",
        help="export the encoder (safetensors, torchvision/timm state dict, ONNX)",
        formatter_class=formatter,
    )
    export.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--no-onnx", action="store_true", help="skip the ONNX file")
    export.set_defaults(handler="export")

    report = sub.add_parser(
        "report", help="write the HTML report of a run", formatter_class=formatter
    )
    report.add_argument("run_dir", help="run folder")
    report.set_defaults(handler="report")


def _add_shard(sub: Any) -> None:
    shard = sub.add_parser(
        "shard",
        help="write a dataset as WebDataset-style tar shards, for streaming",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write DATA as tar shards (NNNNNN.jpg + NNNNNN.cls per image, the files' "
        "own bytes) and shards.json into --out; then train with: byol train OUT_FOLDER.",
    )
    shard.add_argument("data", help="image folder, 'cifar10' or 'digits'")
    shard.add_argument("--out", required=True, help="output folder for the shards")
    shard.add_argument(
        "--images-per-shard",
        type=int,
        default=ShardConfig().images_per_shard,
        help="images per tar",
    )
    add_split_argument(shard)
    shard.add_argument("--max-images", type=int, help="class-balanced subset")
    shard.add_argument(
        "--cache-dir", default=DataConfig().cache_dir, help="where named datasets are unpacked"
    )
    shard.set_defaults(handler="shard")


def _add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="checkpoint file or run folder")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="evaluate a randomly initialised encoder of the checkpoint's "
        "architecture instead (the baseline)",
    )
    parser.add_argument(
        "--data",
        help="labelled data with train/test splits (default: the "
        "run's data.val_source or data.source)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=MonitorConfig().eval_batch_size, help="images per batch"
    )
    parser.add_argument(
        "--max-images", type=int, help="class-balanced subset of the train split (the bank)"
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the raw-pixel (and, for k-NN, random-encoder) baselines printed beside the "
        "result",
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.command == "train" and arguments.help:
        print_train_help(arguments)
        return 0
    with warnings.catch_warnings():  # restores the warning display on the way out
        warnings.showwarning = _warning_printer(_skipped_list_note(arguments))
        return _run(arguments)


def print_train_help(arguments: argparse.Namespace) -> None:
    """``byol train --help``, with the values of the preset this command line would run."""
    parser = build_parser(choose_preset(arguments.preset, arguments.data))
    _chosen_parser(parser, arguments).print_help()


def _run(arguments: argparse.Namespace) -> int:
    try:
        prepare(arguments)
        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module("byol.cli.commands"), arguments.handler
        )
        return int(handler(arguments) or 0)
    except KeyboardInterrupt:
        print("byol: interrupted", file=sys.stderr)
        return 130
    except TrainingStopped as error:
        print(f"byol: stopped: {_first_line(error)}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, PermissionError) as error:
        print(f"byol: error: {_first_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # the machine, not the input: a full disk, a lost mount
        where = f" ({printable(str(error.filename))})" if error.filename else ""
        print(f"byol: error: {error.strerror or _first_line(error)}{where}", file=sys.stderr)
        return 1


def prepare(arguments: argparse.Namespace) -> None:
    """Checks that need no torch: ``byol train``'s configuration (stored as
    ``arguments.resolved``) or its ``--resume`` path."""
    if arguments.command != "train":
        return
    if arguments.resume:
        check_resume_path(arguments.resume)
    else:
        arguments.resolved = resolve_train_config(arguments)


def check_resume_path(resume: str) -> None:
    """Raise ``ValueError`` naming RUN_DIR when ``--resume`` points at nothing."""
    if not Path(resume).expanduser().exists():
        raise ValueError(
            f"--resume {resume}: no such run folder or checkpoint; give RUN_DIR, the folder "
            "byol train wrote (runs/<run>), or one of its checkpoints/*.pt"
        )


def _skipped_list_note(arguments: argparse.Namespace) -> str | None:
    """Where this command writes the list of unreadable image files, if anywhere."""
    if arguments.command == "train":
        return "training images left out are listed in skipped_images.txt in the run folder"
    if arguments.command == "embed":
        return f"the list goes to {Path(arguments.out).with_suffix('.skipped.txt')}"
    return None


def _first_line(error: BaseException) -> str:
    text = printable(str(error).strip())
    return text.splitlines()[0] if text else type(error).__name__


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of odd file names shown as ``\\xNN`` escapes, so
    printing it never fails."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _warning_printer(skipped_list: str | None) -> Callable[..., None]:
    """Warnings are for the user here: one line, without the source line that raised them;
    the skipped-images warning names the file that lists them."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = printable(str(message).strip())
        text = text.splitlines()[0] if text else category.__name__
        # By name: byol.data imports torch, which this module leaves for the commands.
        if skipped_list and category.__name__ == "SkippedImagesWarning":
            text = f"{text}; {skipped_list}"
        print(f"byol: warning: {text}", file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
