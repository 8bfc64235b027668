from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from darkyolo.data.images import read_image
from darkyolo.data.letterbox import letterbox
from darkyolo.errors import DarkyoloError, DataError
from darkyolo.inference.predictor import Detector, Prediction, ReadFailure, class_names
from darkyolo.models.io import load_model
from darkyolo.postprocess import postprocess, scale_to_original

SIZE = 96
CONF = 0.2


@pytest.fixture(scope="module")
def model():
    net = load_model("yolov3-tiny").randomize_(seed=0)
    return net


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, (h, w) in {"a.png": (60, 90), "b.jpg": (101, 47), "c.png": (96, 96)}.items():
        path = tmp_path / name
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_class_names_by_count_and_file(tmp_path):
    assert class_names(80)[0] == "person" and len(class_names(80)) == 80
    assert class_names(20)[0] == "aeroplane"
    assert class_names(3) == ["class 0", "class 1", "class 2"]
    names = tmp_path / "x.names"
    names.write_text("cat\ndog\n\n")  # blank lines at the end are ignored
    assert class_names(2, names) == ["cat", "dog"]
    with pytest.raises(DataError, match="2 class names for a model of 3"):
        class_names(3, names)
    # one names reader everywhere: a blank line inside would shift every later class (in
    # Darknet it is an empty name), so it is an error naming the line
    names.write_text("cat\n\ndog\n")
    with pytest.raises(DataError, match=r"x\.names:2: empty class name"):
        class_names(2, names)


def test_predict_matches_the_manual_pipeline(model, pictures):
    detector = Detector(model, img_size=SIZE, conf=CONF, iou=0.5, max_det=50)
    results = detector.predict(pictures)
    assert [Path(r.source).name for r in results] == ["a.png", "b.jpg", "c.png"]
    for path, result in zip(pictures, results):
        image = read_image(path)
        net_image, box = letterbox(image, (SIZE, SIZE))
        x = torch.from_numpy(net_image).permute(2, 0, 1)[None]
        with torch.inference_mode():
            rows = model(x)
        (expected,) = scale_to_original(postprocess(rows, (SIZE, SIZE), CONF, 0.5, 50), [box])
        assert result.image_hw == image.shape[:2]
        assert len(result) == len(expected) > 0
        np.testing.assert_allclose(result.boxes, expected.boxes.numpy(), atol=1e-3)
        np.testing.assert_allclose(result.scores, expected.scores.numpy(), atol=1e-5)
        assert result.labels.tolist() == expected.labels.tolist()
        h, w = image.shape[:2]
        assert result.boxes[:, [0, 2]].min() >= 0 and result.boxes[:, [0, 2]].max() <= w
        assert result.boxes[:, [1, 3]].min() >= 0 and result.boxes[:, [1, 3]].max() <= h
        assert len(result.label_names) == len(result) and result.counts()


def test_predict_arrays_and_batching_agree(model, pictures):
    arrays = [read_image(p) for p in pictures]
    one = Detector(model, img_size=SIZE, conf=CONF, batch_size=1).predict(arrays)
    three = Detector(model, img_size=SIZE, conf=CONF, batch_size=3).predict(arrays)
    for a, b in zip(one, three):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    single = Detector(model, img_size=SIZE, conf=CONF).predict(arrays[0])
    assert len(single) == 1 and isinstance(single[0], Prediction)
    with pytest.raises(DataError, match="RGB uint8"):
        Detector(model, img_size=SIZE).predict(np.zeros((10, 10), np.float32))


def test_onnxruntime_backend_agrees_with_torch(model, pictures):
    pytest.importorskip("onnxruntime")
    torch_results = Detector(model, img_size=SIZE, conf=CONF).predict(pictures)
    ort = Detector(model, backend="onnxruntime", img_size=SIZE, conf=CONF)
    assert ort.backend_name == "onnxruntime"
    for a, b in zip(torch_results, ort.predict(pictures)):
        assert a.labels.tolist() == b.labels.tolist()
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_classes_filter_and_threshold(model, pictures):
    results = Detector(model, img_size=SIZE, conf=CONF, classes=[0, 1]).predict(pictures)
    assert all(set(r.labels.tolist()) <= {0, 1} for r in results)
    assert all(len(r) == 0 for r in Detector(model, img_size=SIZE, conf=1.0).predict(pictures))


def test_stream_reports_bad_files_and_goes_on(model, pictures, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a picture")
    detector = Detector(model, img_size=SIZE, conf=CONF, batch_size=2)
    out = list(detector.stream([pictures[0], bad, tmp_path / "gone.png", *pictures[1:]]))
    failures = [r for r in out if isinstance(r, ReadFailure)]
    results = [r for r in out if isinstance(r, Prediction)]
    assert sorted(Path(f.source).name for f in failures) == ["broken.jpg", "gone.png"]
    assert [Path(r.source).name for r in results] == ["a.png", "b.jpg", "c.png"]
    assert all(r.image is None for r in results)
    kept = list(detector.stream([pictures[0]], keep_images=True))
    assert kept[0].image.shape == (60, 90, 3)
    assert detector.timings.images == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"img_size": 100}, "multiple of the network stride"),
        ({"backend": "tensorrt"}, "--backend must be one of auto, torch, onnxruntime, openvino"),
        ({"conf": 1.5}, "0..1"),
        ({"classes": [80]}, "outside"),
        ({"batch_size": 0}, "at least 1"),
    ],
)
def test_bad_settings_are_refused(model, kwargs, message):
    with pytest.raises(DarkyoloError, match=message):
        Detector(model, **kwargs)


def test_rectangular_input_size(model, pictures):
    detector = Detector(model, img_size=(64, 128), conf=CONF)
    assert detector.input_hw == (64, 128)
    assert len(detector.predict(pictures)) == 3


def test_bf16_stays_close_to_float32(model, pictures):
    full = Detector(model, img_size=SIZE, conf=CONF)
    half = Detector(model, img_size=SIZE, conf=CONF, bf16=True)
    batch = np.stack([letterbox(read_image(p), (SIZE, SIZE))[0] for p in pictures])
    a, b = full.backend(batch), half.backend(batch)
    assert b.dtype == torch.float32 and a.shape == b.shape
    assert (a[..., 4:] - b[..., 4:]).abs().max() < 0.05
    assert (a[..., :2] - b[..., :2]).abs().max() < 0.02
    with pytest.raises(DarkyoloError, match="bf16"):
        Detector(model, backend="onnxruntime", bf16=True)


def test_stream_keeps_the_input_order_with_failures_in_their_place(tmp_path) -> None:
    names = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(path)
        names.append(str(path))
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    sources = [names[0], str(tmp_path / "gone.jpg"), names[1], str(tmp_path / "bad.jpg"), names[2]]
    for batch in (1, 2, 4):
        detector = Detector("yolov3-tiny", random_weights=True, img_size=64, batch_size=batch)
        seen = [
            ("fail" if isinstance(r, ReadFailure) else "ok", Path(r.source).name)
            for r in detector.stream(sources)
        ]
        assert seen == [("ok", "0.png"), ("fail", "gone.jpg"), ("ok", "1.png"),
                        ("fail", "bad.jpg"), ("ok", "2.png")], batch  # fmt: skip
