"""``byol finetune`` and the few-label / transfer flags of ``byol eval``, in-process."""

import argparse
import json
from pathlib import Path

import pytest

from byol.cli.main import build_parser, main
from tests.helpers import TEST_PER_CLASS, TRAIN_PER_CLASS, last_json_line


def _sub_parser(path: list[str]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_finetune_prints_and_saves_its_result_with_the_labels_used(
    untrained_run: Path, colour_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuned"
    flags = ["--epochs", "1", "--batch-size", "6", "--label-fraction", "0.5", "--no-progress"]
    data = ["--checkpoint", str(untrained_run), "--data", str(colour_folder), "--out", str(out)]
    code = main(["finetune", *data, *flags, "--image-size", "20"])
    assert code == 0
    record = last_json_line(capsys.readouterr().out)
    assert record == json.loads((out / "results.json").read_text())
    assert record["from_scratch"] is False and record["initialisation"] == "pre-trained"
    assert 0.0 <= float(record["top1"]) <= float(record["top5"]) <= 1.0  # type: ignore[arg-type]
    assert record["train_images"] == 3 * TRAIN_PER_CLASS // 2
    assert record["test_images"] == 3 * TEST_PER_CLASS
    assert record["label_subset"]["label_fraction"] == 0.5  # type: ignore[index]
    assert record["resize_policy"] == "resize shorter side to 23, centre crop 20 (bicubic)"
    assert record["recipe"]["weight_decay"] == 5e-4  # type: ignore[index]
    used = (out / "labels_used.txt").read_text().splitlines()
    assert len(used) == record["train_images"] and len(set(used)) == len(used)
    assert {p.name for p in out.iterdir()} == {
        "results.json",
        "labels_used.txt",
        "classifier.safetensors",
        "classifier.json",
    }
    metadata = json.loads((out / "classifier.json").read_text())
    assert metadata["classes"] == ["class0", "class1", "class2"] and metadata["image_size"] == 20


def test_from_scratch_is_recorded_and_goes_to_its_own_folder(
    untrained_run: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["finetune", "--checkpoint", str(untrained_run), "--data", str(colour_folder)]
    assert main([*args, "--from-scratch", "--epochs", "1", "--no-progress"]) == 0
    record = last_json_line(capsys.readouterr().out)
    assert record["from_scratch"] is True and record["initialisation"] == "from-scratch"
    assert record["label_subset"] is None
    assert (
        Path(str(record["files"]["results.json"])).parent == untrained_run / "finetune-from-scratch"
    )  # type: ignore[index]


def test_eval_linear_and_knn_with_few_labels_at_another_size(
    untrained_run: Path, colour_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe" / "linear.safetensors"
    common = ["--checkpoint", str(untrained_run), "--data", str(colour_folder), "--no-baselines"]
    few = ["--labels-per-class", "2", "--image-size", "24", "--out", str(out)]
    assert main(["eval", "linear", *common, *few]) == 0
    linear = last_json_line(capsys.readouterr().out)
    assert linear["train_images"] == 6 and linear["image_size"] == 24
    assert linear["resize_policy"] == "resize shorter side to 27, centre crop 24 (bicubic)"
    assert linear["labels_used"] == str(out.parent / "labels_used.txt")
    assert len((out.parent / "labels_used.txt").read_text().splitlines()) == 6
    assert main(["eval", "knn", *common, "--k", "3", "--image-size", "12"]) == 0
    knn = last_json_line(capsys.readouterr().out)
    assert knn["resize_policy"] == "resize shorter side to 14, centre crop 12 (bicubic)"
    assert knn["train_images"] == 3 * TRAIN_PER_CLASS


def test_label_flags_are_checked(
    untrained_run: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["finetune", "--checkpoint", str(untrained_run), "--data", str(colour_folder)]
    assert main([*args, "--label-fraction", "1.5"]) == 2
    assert "label fraction 1.5 must lie in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--label-fraction", "0.1", "--labels-per-class", "3"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("path", [["finetune"], ["eval", "linear"], ["eval", "knn"]])
def test_help_describes_every_flag(path: list[str]) -> None:
    parser = _sub_parser(path)
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
        for option in action.option_strings:
            assert option in text
    if path == ["finetune"]:
        assert "[paper] Appendix C.2" in text and "Nesterov" in text and "10x" in text
        for flag in ("--label-fraction", "--labels-per-class", "--image-size", "--from-scratch"):
            assert flag in text


def test_eval_knn_with_few_labels_keeps_a_balanced_bank_and_lists_it(
    untrained_run: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--checkpoint", str(untrained_run), "--data", str(colour_folder), "--no-baselines"]
    assert main(["eval", "knn", *common, "--k", "3", "--labels-per-class", "2"]) == 0
    knn = last_json_line(capsys.readouterr().out)
    assert knn["train_images"] == 6 and knn["label_subset"]["labels_per_class"] == 2  # type: ignore[index]
    listed = Path(str(knn["labels_used"])).read_text().splitlines()
    assert len(listed) == 6 and {Path(p).parent.name for p in listed} == {
        "class0",
        "class1",
        "class2",
    }
