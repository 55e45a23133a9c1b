"""Parsing before anything heavy: strict flags, suggestions, --version, resume paths, and
commands that answer without importing torch."""

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from byol.cli.main import _warning_printer, build_parser, main
from byol.data.folder import warn_skipped


def test_abbreviated_flags_are_refused_not_completed(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse would take --train.epoch as --train.epochs (prefix matching).
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["train", "--train.epoch", "3"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --train.epoch" in err
    assert "did you mean --train.epochs?" in err and "see byol train --help" in err


def test_every_parser_refuses_abbreviations() -> None:
    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    found += parsers(child)
        return found

    every = parsers(build_parser())
    assert len(every) >= 8 and not any(p.allow_abbrev for p in every)


def test_unknown_flag_of_a_nested_command_names_that_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "knn", "--checkpoint", "x", "--temprature", "1"])
    err = capsys.readouterr().err
    assert "did you mean --temperature?" in err and "see byol eval knn --help" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip().startswith("byol 0.")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["train", "cifar10", "--help"],
        ["train", "--train.epoch", "3"],
        ["train", "--optim.batch_size", "many"],
        ["train", "--resume", "/nonexistent/run"],
    ],
)
def test_help_version_and_mistakes_answer_without_importing_torch(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from byol.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'torch not imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().endswith("torch not imported"), result.stdout + result.stderr


def test_resume_of_a_missing_folder_names_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--resume", str(tmp_path / "no-such-run")]) == 2
    err = capsys.readouterr().err
    assert "RUN_DIR" in err and ".pt checkpoint" not in err
    assert len(err.strip().splitlines()) == 1


def test_skipped_images_warning_names_the_list_file(capsys: pytest.CaptureFixture[str]) -> None:
    show = _warning_printer("the list goes to out.skipped.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        warn_skipped([("x/a.jpg", "truncated")], 3, "'x'")
    err = capsys.readouterr().err
    assert "the list goes to out.skipped.txt" in err and ".skipped for" not in err
