"""Parsing before anything heavy: strict flags, suggestions, --version, resume paths, and
commands that answer without importing torch; the one-line errors and the help text of a real
``byol`` process."""

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
        ["downstream", "--help"],
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


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "byol.cli.main", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "/nonexistent/folder"], "existing folder"),
        (["train", "--no-such-option", "1"], "unrecognized arguments"),
        (["train", "--train.epoch", "3"], "did you mean --train.epochs?"),
        (["train", "--optim.batch_size", "many"], "must be an integer"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_folder_without_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    assert main(["train", str(tmp_path), "--train.output_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "holds no image files" in err and len(err.strip().splitlines()) == 1


def test_bad_config_key_in_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("optim:\n  learning_rate: 0.1\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.learning_rate'" in err
    assert "base_learning_rate" in err


def test_help_lists_every_option_with_default() -> None:
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for flag in (
        "--optim.base_learning_rate",
        "--target.tau_base",
        "--augment.view2.solarize_prob",
    ):
        assert flag in result.stdout
    assert "Default: 0.97 [library: 0.996]" in " ".join(result.stdout.split())
