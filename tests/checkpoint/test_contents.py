from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from byol.checkpoint import FORMAT_VERSION
from byol.config_io import to_dict
from byol.export import load_encoder_from_checkpoint, read_checkpoint
from tests.helpers import RunsShellCommand, TrainedRun, save_engine_checkpoint, tiny_export_config


def test_reads_a_training_checkpoint(small_run: TrainedRun) -> None:
    checkpoint = read_checkpoint(small_run.checkpoint)
    assert checkpoint["format_version"] == FORMAT_VERSION
    assert checkpoint["config"] == to_dict(small_run.config)
    assert checkpoint["step"] == 1 and "optimizer" in checkpoint


def test_missing_file_and_folder_without_checkpoint_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match=r"folder without checkpoints/last\.pt"):
        read_checkpoint(tmp_path)


def test_run_folder_reads_its_last_checkpoint(tmp_path: Path, small_run: TrainedRun) -> None:
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(small_run.checkpoint, tmp_path / "checkpoints" / "last.pt")
    assert read_checkpoint(tmp_path)["step"] == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"just some text\n", "torch.load failed"),
        (b"", "torch.load failed"),
        ([1, 2, 3], "holds a list"),
        ({"format_version": 1, "config": {}}, "no model key"),
        ({"format_version": "1", "config": {}, "model": {}}, "format_version='1'"),
        ({"format_version": 1, "config": {}, "model": {"w": 3}}, "not a state dict"),
    ],
)
def test_files_that_are_no_checkpoint_are_refused(
    tmp_path: Path, content: object, reason: str
) -> None:
    path = tmp_path / "file.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match="is not a BYOL checkpoint") as error:
        read_checkpoint(path)
    assert reason in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickle_that_would_run_code_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    payload = pickle.dumps({"format_version": 1, "payload": RunsShellCommand(marker)})
    # The payload is real: an unrestricted unpickler runs it.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(RunsShellCommand(marker), protocol=2))
    saved = tmp_path / "saved.pt"
    torch.save(
        {"format_version": 1, "config": {}, "model": {}, "x": RunsShellCommand(marker)}, saved
    )
    for path in (raw, saved):
        with pytest.raises(ValueError, match="refused for safety") as error:
            read_checkpoint(path)
        assert "system" in str(error.value)  # names what it refused
        assert not marker.exists()
    # Protocol 4 framing is refused before torch even reaches the call.
    raw.write_bytes(payload)
    with pytest.raises(ValueError, match="refused for safety"):
        read_checkpoint(raw)
    assert not marker.exists()


def test_newer_format_version_is_refused(tmp_path: Path, small_run: TrainedRun) -> None:
    path = save_engine_checkpoint(
        tmp_path / "future.pt",
        small_run.model.state_dict(),
        to_dict(small_run.config),
    )
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["format_version"] = FORMAT_VERSION + 1
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"format_version=2, newer .* upgrade byol"):
        read_checkpoint(path)


def test_loads_the_online_encoder_in_eval_mode(small_run: TrainedRun) -> None:
    encoder, config = load_encoder_from_checkpoint(small_run.checkpoint)
    assert not encoder.training
    assert config.model == small_run.config.model
    assert config.augment.mean == (0.5, 0.4, 0.3)
    online = small_run.model.online.encoder.state_dict()
    target = small_run.model.target.encoder.state_dict()
    loaded = encoder.state_dict()
    assert loaded.keys() == online.keys()
    assert all(torch.equal(loaded[key], online[key]) for key in online)
    # The training step made online and target differ, so this tells them apart.
    assert not all(torch.equal(online[key], target[key]) for key in online)
    images = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(encoder(images), small_run.model.online.encoder(images))


@pytest.mark.parametrize(
    ("backbone", "problem"),
    [("small_resnet18_w16", "shapes differ"), ("resnet34", "missing keys")],
)
def test_weights_from_another_backbone_give_a_clear_error(
    tmp_path: Path, small_run: TrainedRun, backbone: str, problem: str
) -> None:
    other = to_dict(tiny_export_config(backbone, 16))
    path = save_engine_checkpoint(tmp_path / "mixed.pt", small_run.model.state_dict(), other)
    with pytest.raises(ValueError, match=f"do not fit model.backbone='{backbone}'") as error:
        load_encoder_from_checkpoint(path)
    assert problem in str(error.value)
    assert "\n" not in str(error.value)


def test_wrapped_state_dict_names_the_wrapper(tmp_path: Path, small_run: TrainedRun) -> None:
    state = {f"module.{key}": value for key, value in small_run.model.state_dict().items()}
    path = save_engine_checkpoint(tmp_path / "ddp.pt", state, to_dict(small_run.config))
    with pytest.raises(ValueError, match="DistributedDataParallel"):
        load_encoder_from_checkpoint(path)


def test_unknown_config_key_gives_a_clear_error(tmp_path: Path, small_run: TrainedRun) -> None:
    config = to_dict(small_run.config)
    config["model"]["width_multiplier"] = 2
    path = save_engine_checkpoint(tmp_path / "odd.pt", small_run.model.state_dict(), config)
    with pytest.raises(ValueError, match=r"saved config does not fit .*width_multiplier"):
        load_encoder_from_checkpoint(path)
