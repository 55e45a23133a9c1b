"""The equal-epoch quality harness: its variants are valid configs, its table reads its files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.quality.ablate import COMMON, VARIANTS, is_recorded, main, metrics_path
from benchmarks.quality.table import markdown, read_runs
from byol.config_io import apply_dotted
from byol.presets import preset


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_is_a_valid_config(name: str) -> None:
    config = apply_dotted(preset("cifar10", 10), {**COMMON, **VARIANTS[name]})
    assert config.model.backbone == "small_resnet18_w16"


def test_table_lines_up_epochs_runs_and_baselines(tmp_path: Path) -> None:
    ours = {
        "variant": "preset",
        "knn_top1_by_epoch": {"2": 0.30, "4": 0.35},
        "baselines": {"raw_pixels": 0.39, "random_encoder": 0.27},
    }
    (tmp_path / "ours.jsonl").write_text(json.dumps(ours) + "\n")
    (tmp_path / "lightly.json").write_text(
        json.dumps({"implementation": "lightly", "knn_top1_by_epoch": {"2": 0.28}})
    )
    table = markdown(read_runs([tmp_path / "ours.jsonl", tmp_path / "lightly.json"]))
    lines = table.splitlines()
    assert (
        lines[0]
        == "| epoch | preset | lightly | raw_pixels (baseline) | random_encoder (baseline) |"
    )
    assert lines[2] == "| 2 | 30.00% | 28.00% | 39.00% | 27.00% |"
    assert lines[3] == "| 4 | 35.00% |  | 39.00% | 27.00% |"


def test_a_rerun_skips_a_variant_only_at_a_seed_it_already_has() -> None:
    record = {"variant": "lr0.1", "seed": 1}
    assert is_recorded(record, "lr0.1", 1, 256)
    assert not is_recorded(record, "lr0.1", 2, 256)
    assert not is_recorded(record, "preset", 1, 256)
    assert is_recorded(record, "lr0.1", None, 256)
    assert not is_recorded(record, "lr0.1", 1, batch_size=128)


def test_table_names_a_run_by_its_seed_unless_zero() -> None:
    curve = {"knn_top1_by_epoch": {"2": 0.3}}
    runs = [{"variant": "lr0.1", "seed": 0, **curve}, {"variant": "lr0.1", "seed": 1, **curve}]
    assert markdown(runs).splitlines()[0] == "| epoch | lr0.1 | lr0.1 seed 1 |"


# The batch of the records that name none; the harness's default is the short-run preset's.
AT_256 = ("--batch-size", "256")


def _ablate(monkeypatch: pytest.MonkeyPatch, out: Path, *flags: str) -> None:
    monkeypatch.setattr("sys.argv", ["ablate", "--out", str(out), *flags])
    main()


def test_a_new_out_file_refuses_to_overwrite_the_metrics_of_the_same_variant_and_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = metrics_path(tmp_path, "lr0.1", 1, 256)
    taken.write_text("step,epoch\n")
    with pytest.raises(SystemExit, match=re.escape(f"{taken} already exist")):
        _ablate(monkeypatch, tmp_path / "bf16.jsonl", *AT_256, "--variants", "lr0.1", "--seed", "1")
    assert taken.read_text() == "step,epoch\n"


def test_a_resumed_sweep_skips_what_its_out_file_holds_without_refusing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ours.jsonl"
    out.write_text(json.dumps({"variant": "lr0.1", "seed": 1}) + "\n")
    metrics_path(tmp_path, "lr0.1", 1, 256).write_text("step,epoch\n")
    _ablate(monkeypatch, out, *AT_256, "--variants", "lr0.1", "--seed", "1")
    assert len(out.read_text().splitlines()) == 1


def test_runs_at_another_batch_size_get_their_own_names(tmp_path: Path) -> None:
    # Two runs of one variant and seed at two batch sizes, side by side, must not share files.
    assert metrics_path(tmp_path, "preset", 2, 256).name == "preset-seed2.metrics.csv"
    assert metrics_path(tmp_path, "preset", 2, 128).name == "preset-batch128-seed2.metrics.csv"


def test_a_record_without_a_batch_size_was_made_at_256() -> None:
    record = {"variant": "preset", "seed": 0}
    assert is_recorded(record, "preset", 0, batch_size=256)
    assert not is_recorded(record, "preset", 0, batch_size=64)
