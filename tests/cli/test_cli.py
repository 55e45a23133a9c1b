import subprocess
import sys
from pathlib import Path

import pytest

from byol.cli.main import main


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
    assert "Default: 0.99 [library: 0.996]" in " ".join(result.stdout.split())
