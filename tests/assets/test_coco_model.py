"""The bundled COCO model (Darknet's official yolov3-tiny.weights) is exact and finds what it should.

Real weights, real pictures (``../shared/data/samples``): darkyolo's decoded outputs against
OpenCV's Darknet importer on the same letterboxed input, and the classes found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import shared_data

from darkyolo import Detector
from darkyolo.data.images import read_image
from darkyolo.data.letterbox import letterbox
from darkyolo.models.zoo import resolve_model

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2.dnn, "readNetFromDarknet"):  # OpenCV 5 removed the importer
    pytest.skip("this OpenCV has no Darknet importer", allow_module_level=True)

TOLERANCE = 2e-4
PICTURES = ("dog", "eagle", "giraffe", "horses", "kite", "person", "scream")


@pytest.fixture(scope="module")
def outputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per sample picture: (darkyolo rows, OpenCV rows), each ``[N, 85]``, for one 416 input."""
    samples = shared_data("samples")
    source = resolve_model()
    model = source.build()
    net = cv2.dnn.readNetFromDarknet(str(source.config.source), str(source.weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    found = {}
    for name in PICTURES:
        image, _ = letterbox(read_image(samples / f"{name}.jpg"), (416, 416))
        x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        net.setInput(x)
        theirs = net.forward(net.getUnconnectedOutLayersNames())
        theirs = np.concatenate([o.reshape(-1, o.shape[-1]) for o in theirs], axis=0)
        with torch.inference_mode():
            ours = model(torch.from_numpy(x))[0].numpy()
        found[name] = (ours, theirs)
    return found


def test_decoded_outputs_match_opencv(outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    compared = 0
    for name, (ours, theirs) in outputs.items():
        assert ours.shape == theirs.shape == (2535, 85), name
        box_obj = np.abs(ours[:, :5] - theirs[:, :5]).max()
        assert box_obj <= TOLERANCE, (name, box_obj)
        scores = ours[:, 5:] * ours[:, 4:5]
        shown = theirs[:, 5:] != 0  # OpenCV zeroes class scores under the cfg's threshold
        if shown.any():  # scream.jpg (a painting) has no score above it
            cls = np.abs(scores - theirs[:, 5:])[shown].max()
            assert cls <= TOLERANCE, (name, cls)
            compared += 1
    assert compared >= 6, compared


def test_the_classes_above_half_agree(outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    found = 0
    for name, (ours, theirs) in outputs.items():
        mine = set(np.nonzero(ours[:, 5:] * ours[:, 4:5] > 0.5)[1].tolist())
        opencv = set(np.nonzero(theirs[:, 5:] > 0.5)[1].tolist())
        assert mine == opencv, (name, mine, opencv)
        found += bool(mine)
    assert found >= 6, found  # every photograph has something above 0.5


def test_dog_jpg_gives_dog_bicycle_and_truck() -> None:
    prediction = Detector().predict(shared_data("samples/dog.jpg"))[0]
    assert {"dog", "bicycle", "truck"} <= set(prediction.label_names), prediction.counts()
    dog = prediction.boxes[prediction.label_names.index("dog")]
    # The dog sits in the lower left of the 768x576 picture.
    assert dog[0] < 200 and dog[1] > 150 and dog[2] < 400 and dog[3] > 450, dog


def test_the_shipped_sample_pictures_are_there_with_their_licence() -> None:
    from importlib import resources

    samples = Path(str(resources.files("darkyolo") / "assets" / "samples"))
    assert (samples / "LICENSE").is_file()
    assert {"dog.jpg", "horses.jpg", "person.jpg"} <= {p.name for p in samples.glob("*.jpg")}
