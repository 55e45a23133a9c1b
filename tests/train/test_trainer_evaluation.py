"""What a run measures beside BYOL: the online classifier, the k-NN baselines, the summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from byol.checkpoint import read_checkpoint
from byol.train.engine import train
from tests.helpers import tiny_train_config


def _labelled_run(tmp_path: Path, online: bool) -> Path:
    config = tiny_train_config(tmp_path)
    config.data.val_source = "digits"
    config.monitor.knn_every_epochs = 1
    config.monitor.knn_k = 20
    config.monitor.online_classifier = online
    config.train.run_name = f"online-{online}"
    result = train(config, progress=False)
    assert (result.online_test_top1 is not None) is online
    assert set(result.baselines) == {"raw_pixels", "random_encoder"}
    return result.run_dir


def test_online_classifier_is_logged_and_changes_no_weight(tmp_path: Path) -> None:
    with_online = _labelled_run(tmp_path, online=True)
    without = _labelled_run(tmp_path, online=False)
    # The same encoder, projector and predictor, bit for bit, with and without the classifier.
    trained = read_checkpoint(with_online / "checkpoints" / "final.pt")
    reference = read_checkpoint(without / "checkpoints" / "final.pt")
    for name, value in reference["model"].items():
        torch.testing.assert_close(trained["model"][name], value, atol=0, rtol=0)
    assert "online_classifier" in trained and "online_classifier" not in reference
    with (with_online / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    per_epoch = [float(r["online_train_top1"]) for r in rows if r["online_train_top1"]]
    tested = [float(r["online_test_top1"]) for r in rows if r["online_test_top1"]]
    assert len(per_epoch) == 2 and len(tested) == 2  # one per epoch, one per k-NN evaluation
    assert all(0.0 <= value <= 1.0 for value in per_epoch + tested)


def test_run_writes_baselines_and_summary_for_the_report(tmp_path: Path) -> None:
    run_dir = _labelled_run(tmp_path, online=True)
    baselines = json.loads((run_dir / "baselines.json").read_text())
    # Digits pixels are strong (0.88 with this 256-image bank), a random network weaker.
    assert baselines["raw_pixels"]["top1"] > max(0.8, baselines["random_encoder"]["top1"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["images"] == 256 and summary["seconds"] > 0
    page = (run_dir / "report.html").read_text()
    assert 'id="baselines"' in page and "raw pixels" in page and 'id="run-summary"' in page


def test_a_resumed_log_keeps_the_columns_its_file_started_with(tmp_path: Path) -> None:
    from byol.train.run_log import RunLog

    (tmp_path / "metrics.csv").write_text("step,epoch,loss\n1,0,2.0\n")
    log = RunLog(tmp_path, tensorboard=False, resume_step=1)
    log.write({"step": 2, "epoch": 0, "loss": 1.5, "online_train_top1": 0.3})
    log.close()
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [["step", "epoch", "loss"], ["1", "0", "2.0"], ["2", "0", "1.5"]]


def test_smaller_training_views_are_evaluated_at_the_image_size(tmp_path: Path) -> None:
    def pixels_baseline(view_size: int | None) -> float:
        config = tiny_train_config(tmp_path)
        config.augment.view_size = view_size
        config.data.val_source = "digits"
        config.monitor.knn_every_epochs = 1
        config.monitor.knn_k = 20
        config.train.epochs = 1
        config.train.run_name = f"views-{view_size}"
        result = train(config, progress=False)
        assert result.knn_top1 is not None
        baselines = json.loads((result.run_dir / "baselines.json").read_text())
        return float(baselines["raw_pixels"]["top1"])

    # The pixels are read at augment.image_size (16) whatever side the views are trained at:
    # at 8 px the same 16 px digits give the same nearest neighbours.
    assert pixels_baseline(8) == pixels_baseline(None)
