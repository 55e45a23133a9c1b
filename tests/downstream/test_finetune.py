"""Fine-tuning itself: what it trains, at which rates, how well, and the files it writes."""

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from byol.backbones import build_backbone
from byol.checkpoint import load_encoder_from_checkpoint
from byol.cli.finetune_run import starting_encoder
from byol.config import AugmentConfig, Config, LinearEvalConfig
from byol.downstream.classifier_io import load_finetuned, save_finetuned
from byol.downstream.finetune import (
    FinetuneClassifier,
    build_optimizer,
    evaluate,
    finetune,
    set_learning_rate,
)
from byol.downstream.finetune_config import FinetuneConfig
from byol.downstream.splits import LabelledSplits, prepare_splits
from byol.eval.batches import eval_batches
from byol.eval.linear_official import linear_eval_official

CPU = torch.device("cpu")
AUGMENT = AugmentConfig(image_size=16)


def _splits(folder: Path, tmp_path: Path, size: int = 16) -> LabelledSplits:
    config = Config()
    config.data.cache_dir = str(tmp_path / "cache")
    config.data.num_workers = 0
    return prepare_splits(config, str(folder), size)


def _classifier(backbone: str = "small_resnet18_w8", seed: int = 0) -> FinetuneClassifier:
    torch.manual_seed(seed)
    encoder = build_backbone(backbone)
    return FinetuneClassifier(encoder.module, encoder.feature_dim, 3)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def test_head_learning_rate_is_ten_times_the_backbone_and_biases_are_not_decayed() -> None:
    classifier = _classifier()
    optimizer = build_optimizer(classifier, FinetuneConfig(), image_size=32)
    set_learning_rate(optimizer, 0.02)
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert set(groups) == {"backbone/decayed", "backbone/excluded", "head/decayed", "head/excluded"}
    assert groups["backbone/decayed"]["lr"] == pytest.approx(0.02)
    assert groups["head/decayed"]["lr"] == pytest.approx(0.2)
    assert groups["head/excluded"]["lr"] == pytest.approx(0.2)
    assert groups["head/decayed"]["params"] == [classifier.head.weight]
    assert groups["backbone/decayed"]["weight_decay"] == 5e-4  # 32 px: the small-image decay
    assert groups["backbone/excluded"]["weight_decay"] == 0.0
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    covered = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(covered) == sorted(id(p) for p in classifier.parameters())
    large = build_optimizer(classifier, FinetuneConfig(head_lr_multiplier=3.0), image_size=224)
    set_learning_rate(large, 0.1)
    assert {g["name"]: g["lr"] for g in large.param_groups}["head/decayed"] == pytest.approx(0.3)
    assert large.param_groups[0]["weight_decay"] == 1e-4


def test_finetune_changes_the_encoder_while_a_linear_probe_does_not(
    colour_folder: Path, tmp_path: Path
) -> None:
    splits = _splits(colour_folder, tmp_path)
    probed = _classifier().encoder
    before = _weights(probed)
    train, test = splits.train, splits.test
    linear_eval_official(
        probed,
        lambda epoch: eval_batches(train.images, train.labels, AUGMENT, 12, CPU),
        eval_batches(test.images, test.labels, AUGMENT, 12, CPU),
        feature_dim=64,
        num_classes=3,
        batch_size=12,
        steps_per_epoch=3,
        settings=LinearEvalConfig(epochs=1),
    )
    assert all(torch.equal(before[k], v) for k, v in _weights(probed).items())
    classifier = _classifier()
    before = _weights(classifier.encoder)
    settings = FinetuneConfig(epochs=1, batch_size=12, precision="32-true")
    outcome = finetune(classifier, train.images, train.labels, settings, AUGMENT, CPU)
    after = _weights(classifier.encoder)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "conv1.weight" in changed and "layer4.1.conv2.weight" in changed
    assert "bn1.running_mean" in changed  # BatchNorm trains too
    assert outcome.steps == 3 and not classifier.training


def test_finetune_learns_an_easy_task_well_above_chance(
    colour_folder: Path, tmp_path: Path
) -> None:
    splits = _splits(colour_folder, tmp_path)
    classifier = _classifier()
    settings = FinetuneConfig(epochs=8, batch_size=12, learning_rate=0.5, precision="32-true")
    finetune(classifier, splits.train.images, splits.train.labels, settings, AUGMENT, CPU)
    top1, top5 = evaluate(classifier, splits.test.images, splits.test.labels, AUGMENT, 64, CPU)
    assert top1 >= 0.8  # chance is 1/3
    assert top5 == 1.0  # three classes: top-5 is top-3


def test_from_scratch_starts_from_seeded_random_weights_not_the_checkpoint(
    untrained_run: Path,
) -> None:
    checkpoint = untrained_run / "checkpoints" / "last.pt"
    saved, _ = load_encoder_from_checkpoint(checkpoint)
    pretrained, _ = starting_encoder(checkpoint, FinetuneConfig())
    scratch, _ = starting_encoder(checkpoint, FinetuneConfig(from_scratch=True, seed=3))
    scratch_again, _ = starting_encoder(checkpoint, FinetuneConfig(from_scratch=True, seed=3))
    weight = "layer1.0.conv1.weight"
    assert torch.equal(pretrained.state_dict()[weight], saved.state_dict()[weight])
    assert not torch.equal(scratch.state_dict()[weight], saved.state_dict()[weight])
    assert torch.equal(scratch.state_dict()[weight], scratch_again.state_dict()[weight])
    assert type(scratch) is type(saved)


def test_torchvision_state_dict_loads_into_resnet18_and_computes_the_same(
    colour_folder: Path, tmp_path: Path
) -> None:
    splits = _splits(colour_folder, tmp_path, size=32)
    classifier = _classifier("resnet18")
    settings = FinetuneConfig(epochs=1, batch_size=18, precision="32-true")
    augment = AugmentConfig(image_size=32)
    finetune(classifier, splits.train.images, splits.train.labels, settings, augment, CPU)
    metadata = {"backbone": "resnet18", "cifar_stem": False, "num_classes": 3}
    files = save_finetuned(classifier, tmp_path / "out", metadata)
    assert {path.name for path in files} == {
        "classifier.safetensors",
        "classifier.json",
        "resnet.pth",
    }
    resnet = torchvision.models.resnet18(weights=None, num_classes=3)
    resnet.load_state_dict(torch.load(tmp_path / "out" / "resnet.pth", weights_only=True))
    images = next(eval_batches(splits.test.images, splits.test.labels, augment, 4, CPU))[0]
    reloaded, _ = load_finetuned(tmp_path / "out")
    with torch.no_grad():
        expected = classifier(images)
        torch.testing.assert_close(resnet.eval()(images), expected)
        torch.testing.assert_close(reloaded(images), expected)


def test_small_resnet_writes_no_torchvision_file(tmp_path: Path) -> None:
    files = save_finetuned(_classifier(), tmp_path, {"backbone": "small_resnet18_w8"})
    assert {path.name for path in files} == {"classifier.safetensors", "classifier.json"}


@pytest.mark.parametrize(
    ("settings", "flag"),
    [
        (FinetuneConfig(epochs=0), "--epochs"),
        (FinetuneConfig(learning_rate=0.0), "--learning-rate"),
        (FinetuneConfig(crop_scale_min=0.5, crop_scale_max=0.2), "--crop-scale-min"),
        (FinetuneConfig(label_smoothing=1.0), "--label-smoothing"),
        (FinetuneConfig(weight_decay=-1.0), "--weight-decay"),
    ],
)
def test_bad_settings_name_their_flag(settings: FinetuneConfig, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        settings.check()
