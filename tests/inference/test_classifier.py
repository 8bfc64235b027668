"""The Classifier: a trained classifier's ranked classes for a picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.errors import OptionError
from darkyolo.inference.classifier import Classifier
from darkyolo.models.darknet import Darknet
from darkyolo.training.checkpoint import atomic_save, make_checkpoint


def _checkpoint(tmp_path: Path, names: list[str]) -> Path:
    from tiny import tiny_classifier_cfg

    text = tiny_classifier_cfg(classes=3, size=32)
    model = Darknet(parse_cfg(text)).randomize_(3).eval()
    path = tmp_path / "best.pt"
    atomic_save(make_checkpoint(cfg=text, names=names, img_size=32, model=model.state_dict()), path)
    return path


def test_top_ranks_the_classes_best_first(tmp_path: Path) -> None:
    classifier = Classifier(_checkpoint(tmp_path, ["circle", "square", "triangle"]))
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    probabilities = classifier.probabilities(image)
    assert probabilities.shape == (3,)
    torch.testing.assert_close(probabilities.sum(), torch.tensor(1.0))
    ranked = classifier.top(image, k=2)
    assert [r.p for r in ranked] == sorted((r.p for r in ranked), reverse=True)
    assert ranked[0].index == int(probabilities.argmax())
    assert ranked[0].name == classifier.names[ranked[0].index]
    assert len(classifier.top(image, k=10)) == 3


def test_names_must_match_the_outputs(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, ["circle", "square", "triangle"])
    with pytest.raises(OptionError, match="3 outputs but 2 class names"):
        Classifier(path, names=["a", "b"])
