"""Nothing from a checkpoint or a config file is executed, whichever command reads it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from byol.cli.main import main
from tests.helpers import RunsShellCommand, one_error_line

pytestmark = pytest.mark.usefixtures("one_thread")


def _hostile_checkpoint(path: Path, marker: Path, form: str) -> Path:
    payload = {"format_version": 1, "config": {}, "model": {}, "x": RunsShellCommand(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if form == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    return path


def test_the_hostile_checkpoint_is_real(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = _hostile_checkpoint(tmp_path / "evil.pt", marker, "plain pickle")
    pickle.loads(path.read_bytes())  # what an unsafe reader would do
    assert marker.exists()


COMMANDS = {
    "train --resume FILE": lambda run, out: [
        "train",
        "--resume",
        str(run / "checkpoints" / "x.pt"),
    ],
    "train --resume RUN_DIR": lambda run, out: ["train", "--resume", str(run)],
    "eval knn": lambda run, out: ["eval", "knn", "--checkpoint", str(run)],
    "eval linear": lambda run, out: ["eval", "linear", "--checkpoint", str(run)],
    "export": lambda run, out: ["export", "--checkpoint", str(run), "--out", str(out)],
    "embed": lambda run, out: ["embed", "digits", "--checkpoint", str(run), "--out", str(out)],
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("form", ["torch.save", "plain pickle"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_code_in_a_checkpoint_is_refused_and_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, form: str
) -> None:
    marker = tmp_path / "code-ran"
    run = tmp_path / "run"
    for name in ("last.pt", "x.pt"):
        _hostile_checkpoint(run / "checkpoints" / name, marker, form)
    assert main(COMMANDS[command](run, tmp_path / "out")) == 2
    assert "was refused for safety" in one_error_line(capsys)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_yaml_tags_are_not_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    hostile = f"train: !!python/object/apply:os.system ['touch {marker}']\n"
    (tmp_path / "evil.yaml").write_text(hostile)
    assert main(["train", "--config", str(tmp_path / "evil.yaml")]) == 2
    assert "is not valid YAML: could not determine a constructor" in one_error_line(capsys)
    # The same tag in the config.yaml of a run folder that --resume starts again.
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text(hostile)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert "could not determine a constructor" in one_error_line(capsys)
    assert not marker.exists()
