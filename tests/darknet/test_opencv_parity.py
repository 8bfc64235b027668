"""Every bundled cfg gives OpenCV's numbers (cv2.dnn.readNetFromDarknet) on the same random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from darkyolo import Darknet, load_model
from darkyolo.darknet.cfg import bundled_cfgs, resolve_cfg_path
from darkyolo.models.io import save_darknet_weights

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2.dnn, "readNetFromDarknet"):  # OpenCV 5 removed the importer
    pytest.skip("this OpenCV has no Darknet importer", allow_module_level=True)

TOLERANCE = 1e-4
SIZES = [(416, 416), (320, 480)]


def sharpen_class_logits(model: Darknet, factor: float = 30.0) -> None:
    """Spread class logits and raise objectness so scores clear OpenCV's threshold."""
    with torch.no_grad():
        for index, head in zip(model.head_indices, model.heads):
            conv = model.layers[index - 1].conv
            per_anchor = 5 + head.num_classes
            for anchor in range(head.num_anchors):
                classes = slice(anchor * per_anchor + 5, (anchor + 1) * per_anchor)
                conv.weight[classes] *= factor
                if conv.bias is not None:
                    conv.bias[classes] *= factor
                    # Objectness above the cfg's thresh (OpenCV zeroes scores below it, .6 for v2).
                    conv.bias[anchor * per_anchor + 4] += 1.5


def opencv_rows(cfg: Path, weights: Path, image: np.ndarray) -> np.ndarray:
    """OpenCV's output rows for one ``[1, 3, H, W]`` input, heads concatenated in cfg order."""
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(image)
    outputs = net.forward(net.getUnconnectedOutLayersNames())
    return np.concatenate([o.reshape(-1, o.shape[-1]) for o in outputs], axis=0)


@pytest.mark.parametrize("name", bundled_cfgs("detect"))
def test_matches_opencv(name: str, tmp_path: Path) -> None:
    model = load_model(name).randomize_(seed=7)
    sharpen_class_logits(model)
    weights = tmp_path / f"{name}.weights"
    save_darknet_weights(model, weights)
    model = load_model(name, weights)  # through the reader, as a user would
    cfg = resolve_cfg_path(name)
    generator = np.random.default_rng(3)
    for height, width in SIZES:
        image = generator.random((1, 3, height, width), dtype=np.float32)
        theirs = opencv_rows(cfg, weights, image)
        with torch.inference_mode():
            ours = model(torch.from_numpy(image))[0].numpy()
        assert ours.shape == theirs.shape, (height, width)
        box_obj = np.abs(ours[:, :5] - theirs[:, :5]).max()
        scores = ours[:, 5:] * ours[:, 4:5]
        shown = theirs[:, 5:] != 0  # OpenCV zeroes scores under its threshold
        assert shown.any(), "OpenCV reported no class score at all: the comparison would be empty"
        cls = np.abs(scores - theirs[:, 5:])[shown].max()
        print(f"{name} {height}x{width}: max |diff| box+obj {box_obj:.2e}, class {cls:.2e}")
        assert box_obj <= TOLERANCE, (name, height, width, box_obj)
        assert cls <= TOLERANCE, (name, height, width, cls)


CLASSIFIER_SIZES = {
    "darknet19": [(224, 224), (448, 448)],
    "darknet19_448": [(448, 448)],
    "darknet53": [(256, 256)],
    "darknet": [(224, 224), (256, 256)],
}


@pytest.mark.parametrize(("name", "sizes"), CLASSIFIER_SIZES.items())
def test_classifier_matches_opencv(name: str, sizes: list[tuple[int, int]], tmp_path: Path) -> None:
    """The classifiers' softmax outputs (1000 probabilities) agree with OpenCV's to 1e-5."""
    model = load_model(name).randomize_(seed=11)
    with torch.no_grad():  # a spread of logits, so the probabilities are not all ~1/1000
        model.layers[model.logits_index - 1].conv.weight.mul_(10)
    weights = tmp_path / f"{name}.weights"
    save_darknet_weights(model, weights)
    model = load_model(name, weights)
    cfg = resolve_cfg_path(name)
    generator = np.random.default_rng(5)
    for height, width in sizes:
        image = generator.random((1, 3, height, width), dtype=np.float32)
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setInput(image)
        theirs = net.forward().reshape(1, -1)
        with torch.inference_mode():
            ours = model(torch.from_numpy(image)).numpy()
        assert ours.shape == theirs.shape == (1, 1000)
        assert ours.max() > 5e-3  # a real distribution, not a flat 1e-3
        diff = np.abs(ours - theirs).max()
        print(f"{name} {height}x{width}: max |diff| of the probabilities {diff:.2e}")
        assert diff <= 1e-5, (name, height, width, diff)


CONNECTED_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[connected]
output=24
activation=leaky

[dropout]
probability=.5

[connected]
output=10
activation=linear

[softmax]

[cost]
type=sse
"""


def test_connected_matches_opencv(tmp_path: Path) -> None:
    """``[connected]`` (Darknet's weight order, flattening in C, H, W order) and ``[dropout]``
    match OpenCV, which reads connected layers without batch norm correctly."""
    cfg = tmp_path / "fc.cfg"
    cfg.write_text(CONNECTED_CFG)
    model = load_model(cfg).randomize_(seed=2)
    weights = tmp_path / "fc.weights"
    save_darknet_weights(model, weights)
    model = load_model(cfg, weights)
    image = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(image)
    theirs = net.forward().reshape(1, -1)
    with torch.inference_mode():
        ours = model(torch.from_numpy(image)).numpy()
    assert np.abs(ours - theirs).max() <= 1e-5
