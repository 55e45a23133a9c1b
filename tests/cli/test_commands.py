"""Every sub-command on a tiny trained run (in-process, so no interpreter start-ups)."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from byol.checkpoint import config_from_checkpoint, load_encoder_from_checkpoint, read_checkpoint
from byol.cli.main import main
from byol.config import Config
from byol.eval.validation import KNNValidator
from byol.train.engine import train
from tests.helpers import last_json_line, noise_jpeg, tiny_train_config


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of ``tiny_train_config`` trained for one epoch, shared by this module's tests."""
    config = tiny_train_config(tmp_path_factory.mktemp("cli"))
    config.train.epochs = 1
    return train(config, progress=False).run_dir


def read_run_config(run_dir: Path) -> Config:
    return config_from_checkpoint(read_checkpoint(run_dir / "checkpoints" / "last.pt"))


def test_eval_knn_and_linear(one_epoch_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["eval", "knn", "--checkpoint", str(one_epoch_run), "--data", "digits", "--k", "20"])
        == 0
    )
    knn = last_json_line(capsys.readouterr().out)
    # The figure is the trained encoder's, computed as the library computes it.
    config = read_run_config(one_epoch_run)
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, max_images=None),  # the whole train split as bank
        monitor=dataclasses.replace(config.monitor, knn_k=20),
    )
    encoder, _ = load_encoder_from_checkpoint(one_epoch_run / "checkpoints" / "last.pt")
    expected = KNNValidator(config, torch.device("cpu"), source="digits").evaluate(encoder)
    assert expected is not None and float(knn["top1"]) == pytest.approx(expected.top1)
    assert float(knn["top5"]) == pytest.approx(expected.top5)
    # The raw-pixel and random-encoder baselines come with the figure.
    baselines = knn["baselines"]
    assert set(baselines) == {"raw_pixels", "random_encoder"}  # type: ignore[arg-type]
    assert float(baselines["raw_pixels"]["top1"]) > 0.9  # type: ignore[index]
    out = one_epoch_run / "probe.safetensors"
    assert main(["eval", "linear", "--checkpoint", str(one_epoch_run), "--out", str(out)]) == 0
    linear = last_json_line(capsys.readouterr().out)
    assert float(linear["top1"]) > 0.5 and out.is_file()  # type: ignore[arg-type]
    assert float(linear["raw_pixels"]["top1"]) > 0.9  # type: ignore[index]


def test_eval_linear_official_protocol(
    one_epoch_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "linear", "--checkpoint", str(one_epoch_run), "--data", "digits"]
    flags = ["--protocol", "official", "--epochs", "1", "--max-images", "64", "--batch-size", "32"]
    assert main([*args, *flags, "--no-baselines"]) == 0
    captured = capsys.readouterr()
    record = last_json_line(captured.out)
    assert record["protocol"] == "official" and "raw_pixels" not in record
    assert 0.0 < float(record["top1"]) <= float(record["top5"]) <= 1.0  # type: ignore[arg-type]
    # One epoch, as asked (the progress bar counts them), then the test split.
    assert "linear eval 1/1" in captured.err and "linear eval 1/80" not in captured.err


def test_embed_writes_features_and_paths(one_epoch_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.npy"
    assert (
        main(
            [
                "embed",
                "digits",
                "--checkpoint",
                str(one_epoch_run),
                "--out",
                str(out),
                "--split",
                "test",
            ]
        )
        == 0
    )
    features = np.load(out)
    assert features.shape == (450, 64) and np.isfinite(features).all()
    assert len(out.with_suffix(".paths.txt").read_text().splitlines()) == 450


def test_export_and_report(one_epoch_run: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(one_epoch_run),
                "--out",
                str(tmp_path / "x"),
                "--no-onnx",
            ]
        )
        == 0
    )
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "x" / "encoder.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert main(["report", str(one_epoch_run)]) == 0
    assert (one_epoch_run / "report.html").stat().st_size > 1000


def test_quickstart_main_job_prints_trained_pixels_and_random_knn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The README's main job (`byol train` with the digits preset), reduced to 2 epochs.
    flags = [
        "--model.backbone",
        "small_resnet18_w8",
        "--train.epochs",
        "2",
        "--monitor.knn_every_epochs",
        "2",
        "--no-progress",
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--train.output_dir",
        str(tmp_path),
    ]
    assert main(["train", *flags]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("k-NN top-1"))
    trained, pixels, random = (float(part.split()[-1].rstrip("%")) for part in line.split("|"))
    assert "BYOL encoder" in line and "raw pixels" in line and "random encoder" in line
    folder_line = next(row for row in out.splitlines() if row.startswith("run folder: "))
    run_dir = Path(folder_line.removeprefix("run folder: ").split(" (")[0])
    baselines = json.loads((run_dir / "baselines.json").read_text())
    assert pixels == pytest.approx(100 * baselines["raw_pixels"]["top1"], abs=0.01)
    assert random == pytest.approx(100 * baselines["random_encoder"]["top1"], abs=0.01)
    # The encoder's figure is the run's last k-NN evaluation, on its final weights.
    rows = list(csv.DictReader((run_dir / "metrics.csv").read_text().splitlines()))
    last_knn = [float(row["knn_top1"]) for row in rows if row.get("knn_top1")][-1]
    assert trained == pytest.approx(100 * last_knn, abs=0.01)
    # The verdict measures the encoder against the best baseline, with the right sign.
    best_name = "raw pixels" if pixels >= random else "the random encoder"
    if trained > max(pixels, random):
        assert f"beats the best baseline ({best_name})" in out
    else:
        assert f"points below {best_name}" in out
    assert "report:" in out and "next: byol eval linear" in out
    # The digits preset also reports the linear probe of all three, from linear_probe.json.
    line = next(row for row in out.splitlines() if row.startswith("linear probe top-1"))
    printed = [float(part.split()[-1].rstrip("%")) for part in line.split("|")]
    probes = json.loads((run_dir / "linear_probe.json").read_text())
    expected = [100 * probes[name]["top1"] for name in ("encoder", "raw_pixels", "random_encoder")]
    assert printed == pytest.approx(expected, abs=0.01)
    assert 'id="linear-probe"' in (run_dir / "report.html").read_text()
    # And on 10 labels per class, the figures `byol eval linear --labels-per-class 10` gives.
    line = next(row for row in out.splitlines() if row.startswith("linear probe top-1 with 10"))
    printed = [float(part.split()[-1].rstrip("%")) for part in line.split("|")]
    few = json.loads((run_dir / "linear_probe_few_labels.json").read_text())
    assert few["labels"] == {"labels_per_class": 10, "seed": 0}
    expected = [100 * few[name]["top1"] for name in ("encoder", "raw_pixels", "random_encoder")]
    assert printed == pytest.approx(expected, abs=0.01)
    assert 'id="linear-probe-few-labels"' in (run_dir / "report.html").read_text()
    capsys.readouterr()
    evaluate = ["eval", "linear", "--checkpoint", str(run_dir / "checkpoints" / "final.pt")]
    assert main([*evaluate, "--labels-per-class", "10"]) == 0
    evaluated = last_json_line(capsys.readouterr().out)
    assert evaluated["label_subset"]["train_images"] == 100
    assert 100 * evaluated["top1"] == pytest.approx(expected[0], abs=0.01)
    assert 100 * evaluated["raw_pixels"]["top1"] == pytest.approx(expected[1], abs=0.01)


def test_embed_lists_unreadable_images_next_to_its_output(
    one_epoch_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    for index in range(4):
        noise_jpeg(folder / "a" / f"{index}.jpg", side=20, seed=index)
    broken = folder / "a" / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "features.npy"
    assert main(["embed", str(folder), "--checkpoint", str(one_epoch_run), "--out", str(out)]) == 0
    listed = out.with_suffix(".skipped.txt").read_text().splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[0].endswith("broken.jpg")
    assert np.load(out).shape[0] == 4
    captured = capsys.readouterr()
    assert str(out.with_suffix(".skipped.txt")) in captured.out
