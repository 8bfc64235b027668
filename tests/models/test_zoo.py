"""Named trained models, and what --model and --weights mean together (darkyolo.models.zoo)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tiny import tiny_cfg

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.darknet.weights import is_checkpoint
from darkyolo.errors import DarkyoloError, WeightsError
from darkyolo.models.io import load_model, save_darknet_weights
from darkyolo.models.zoo import (
    DEFAULT_MODEL,
    TRAINED_MODELS,
    architecture,
    resolve_model,
    trained_model,
)
from darkyolo.training.checkpoint import atomic_save, make_checkpoint

OFFICIAL_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"


def test_the_default_is_the_official_coco_model_unchanged() -> None:
    source = resolve_model()
    assert source.name == DEFAULT_MODEL == "yolov3-tiny-coco"
    assert source.weights is not None
    assert source.weights.stat().st_size == 35_434_956
    assert hashlib.sha256(source.weights.read_bytes()).hexdigest() == OFFICIAL_SHA256
    assert source.names is not None and len(source.names) == 80
    assert source.names[:3] == ["person", "bicycle", "car"]
    assert (source.weights.parent / "LICENSE").is_file()


def test_every_trained_model_has_its_files_and_matching_class_count() -> None:
    for entry in TRAINED_MODELS:
        source = resolve_model(entry.name)
        assert source.weights is not None and source.weights.is_file()
        assert source.names is not None and len(source.names) == source.config.num_classes
        for alias in entry.aliases:
            assert resolve_model(alias).weights == source.weights


def test_an_alias_names_the_bccd_model() -> None:
    assert trained_model("bccd") is trained_model("yolov3-tiny-bccd")
    assert resolve_model("bccd").names == ["Platelets", "RBC", "WBC"]


def test_a_cfg_without_weights_is_refused_naming_the_trained_models() -> None:
    with pytest.raises(DarkyoloError) as error:
        resolve_model("yolov3")
    message = str(error.value)
    assert "yolov3 is an architecture without trained weights" in message
    assert "yolov3-tiny-coco" in message and "bccd" in message and "--random-weights" in message


def test_random_weights_only_when_asked() -> None:
    source = resolve_model("yolov3-tiny", random_weights=True)
    assert source.weights is None and "random" in source.name
    with pytest.raises(DarkyoloError, match="not both"):
        resolve_model("yolov3-tiny", "x.weights", random_weights=True)
    with pytest.raises(DarkyoloError, match="need a cfg"):
        resolve_model(random_weights=True)


def test_darknet_weights_need_a_cfg(tmp_path: Path) -> None:
    weights = tmp_path / "net.weights"
    save_darknet_weights(load_model("yolov3-tiny").randomize_(1), weights)
    assert not is_checkpoint(weights)
    with pytest.raises(DarkyoloError, match="holds no cfg; name its architecture with --model"):
        resolve_model(None, weights)
    source = resolve_model("yolov3-tiny", weights)
    assert source.weights == weights and source.names is None


def _checkpoint(tmp_path: Path, classes: int) -> Path:
    text = tiny_cfg(classes=classes)
    model = load_model(parse_cfg(text)).randomize_(2)
    path = tmp_path / "best.pt"
    names = [f"thing{k}" for k in range(classes)]
    atomic_save(
        make_checkpoint(cfg=text, names=names, model=model.state_dict(), options={"model": "tiny"}),
        path,
    )
    return path


def test_a_checkpoint_alone_brings_its_cfg_and_names(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, classes=3)
    source = resolve_model(None, path)
    assert source.config.num_classes == 3
    assert source.names == ["thing0", "thing1", "thing2"]
    assert source.notes == ()
    assert source.build().num_classes == 3


def test_the_same_architecture_uses_the_checkpoints_cfg_with_one_note(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg(classes=5))  # the cfg as written before training adapted it
    path = _checkpoint(tmp_path, classes=3)
    source = resolve_model(cfg, path)
    assert source.config.num_classes == 3
    assert len(source.notes) == 1 and "checkpoint's own cfg (3 classes" in source.notes[0]
    assert source.build().num_classes == 3


def test_another_architecture_is_refused_with_what_to_pass(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, classes=3)
    with pytest.raises(WeightsError) as error:
        resolve_model("yolov3", path)
    message = str(error.value)
    assert "holds a 3-class network trained from tiny" in message
    assert "leave out --model" in message


def test_architecture_ignores_classes_and_anchors_only() -> None:
    a = parse_cfg(tiny_cfg(classes=3))
    b = parse_cfg(tiny_cfg(classes=80))
    assert architecture(a) == architecture(b)
    wider = parse_cfg(tiny_cfg(classes=3, filters=(8, 16, 48)))
    assert architecture(a) != architecture(wider)
