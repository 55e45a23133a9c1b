"""Entry point of the ``byol`` command.

Errors a user can fix (a missing folder, a bad config key, a refused checkpoint) end with one
line on stderr and exit status 2, never a traceback; a run that stops itself (a non-finite
loss, a checkpoint that cannot be written) or a failing machine (a full disk) exits with 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from byol.cli import commands
from byol.cli.config_flags import add_config_arguments
from byol.train.engine import TrainingStopped


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="byol", description="BYOL self-supervised pre-training.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    formatter = argparse.ArgumentDefaultsHelpFormatter

    train = sub.add_parser(
        "train",
        help="pre-train an encoder",
        formatter_class=formatter,
        description="Pre-train an encoder with BYOL on a folder of images, "
        "'cifar10' or 'digits'; then compare its k-NN accuracy with a "
        "random encoder when labels exist.",
    )
    train.add_argument(
        "data",
        nargs="?",
        help="image folder, 'cifar10' or 'digits' (default: the preset's data.source)",
    )
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue even if the data differs from the checkpoint's",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(train, default_preset="digits")
    train.set_defaults(handler=commands.train)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint (k-NN or linear probe)")
    protocols = evaluate.add_subparsers(dest="protocol", required=True, parser_class=_Parser)
    knn = protocols.add_parser(
        "knn", help="weighted k-NN on frozen features", formatter_class=formatter
    )
    _add_eval_arguments(knn)
    knn.add_argument("--k", type=int, default=200, help="neighbours")
    knn.add_argument("--temperature", type=float, default=0.1, help="softmax temperature")
    knn.set_defaults(handler=commands.eval_knn)
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
    linear.add_argument("--epochs", type=int, default=80, help="epochs of the official protocol")
    linear.add_argument(
        "--out", help="where to save the classifier (default: next to the checkpoint)"
    )
    linear.set_defaults(handler=commands.eval_linear)

    embed = sub.add_parser(
        "embed", help="encode a dataset into features (.npy + paths)", formatter_class=formatter
    )
    embed.add_argument("data", help="image folder, 'cifar10' or 'digits'")
    embed.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    embed.add_argument("--out", required=True, help="output .npy file (paths go beside it)")
    embed.add_argument("--split", choices=("train", "test"), default="train")
    embed.add_argument("--batch-size", type=int, default=256)
    embed.set_defaults(handler=commands.embed)

    export = sub.add_parser(
        "export",
        help="export the encoder (safetensors, torchvision/timm state dict, ONNX)",
        formatter_class=formatter,
    )
    export.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--no-onnx", action="store_true", help="skip the ONNX file")
    export.set_defaults(handler=commands.export)

    report = sub.add_parser(
        "report", help="write the HTML report of a run", formatter_class=formatter
    )
    report.add_argument("run_dir", help="run folder")
    report.set_defaults(handler=commands.report)

    shard = sub.add_parser(
        "shard",
        help="write a dataset as WebDataset-style tar shards, for streaming",
        formatter_class=formatter,
        description="Write DATA as tar shards (NNNNNN.jpg + NNNNNN.cls per image, the files' "
        "own bytes) and shards.json into --out; then train with: byol train OUT_FOLDER.",
    )
    shard.add_argument("data", help="image folder, 'cifar10' or 'digits'")
    shard.add_argument("--out", required=True, help="output folder for the shards")
    shard.add_argument("--images-per-shard", type=int, default=1000, help="images per tar")
    shard.add_argument("--split", choices=("train", "test"), default="train")
    shard.add_argument("--max-images", type=int, help="class-balanced subset")
    shard.add_argument(
        "--cache-dir", default="~/.cache/byol", help="where named datasets are unpacked"
    )
    shard.set_defaults(handler=commands.shard)
    return parser


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
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--max-images", type=int, help="class-balanced subset of the train split (the bank)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    with warnings.catch_warnings():  # restores the warning display on the way out
        warnings.showwarning = _show_warning
        return _run(arguments)


def _run(arguments: argparse.Namespace) -> int:
    try:
        return int(arguments.handler(arguments) or 0)
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


def _first_line(error: BaseException) -> str:
    text = printable(str(error).strip())
    return text.splitlines()[0] if text else type(error).__name__


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of odd file names shown as ``\\xNN`` escapes, so
    printing it never fails."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Warnings are for the user here: one line, without the source line that raised them.
    text = printable(str(message).strip())
    print(f"byol: warning: {text.splitlines()[0] if text else category.__name__}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
