import pytest
import torch

from darkyolo.data.letterbox import letterbox_params
from darkyolo.postprocess import Detections, postprocess, rows_to_xyxy, scale_to_original


def row(cx, cy, w, h, obj, probs):
    return [cx, cy, w, h, obj, *probs]


def hand_made() -> torch.Tensor:
    """One 100x100 image, 2 classes."""
    rows = [
        row(0.30, 0.30, 0.20, 0.20, 0.9, [0.9, 0.1]),  # A: class 0, score .81
        row(0.31, 0.30, 0.20, 0.20, 0.8, [0.9, 0.1]),  # B: overlaps A, class 0, .72 -> suppressed
        row(0.30, 0.31, 0.20, 0.20, 0.9, [0.2, 0.7]),  # C: overlaps A, class 1, .63 -> kept
        row(0.80, 0.80, 0.10, 0.10, 0.5, [0.8, 0.0]),  # D: alone, class 0, .40 -> kept
        row(0.50, 0.50, 0.10, 0.10, 0.1, [1.0, 1.0]),  # E: objectness .1 -> dropped
        row(0.10, 0.80, 0.10, 0.10, 0.9, [0.2, 0.2]),  # F: score .18 -> dropped
    ]
    return torch.tensor([rows], dtype=torch.float32)


def test_rows_to_xyxy_in_network_pixels():
    boxes = rows_to_xyxy(torch.tensor([[0.5, 0.25, 0.2, 0.1]]), (200, 100))
    assert torch.allclose(boxes, torch.tensor([[40.0, 40.0, 60.0, 60.0]]))


def test_nms_keeps_the_right_boxes():
    (det,) = postprocess(hand_made(), (100, 100), conf_thresh=0.25, iou_thresh=0.45)
    assert det.labels.tolist() == [0, 1, 0]
    assert torch.allclose(det.scores, torch.tensor([0.81, 0.63, 0.40]))
    assert torch.allclose(det.boxes[0], torch.tensor([20.0, 20.0, 40.0, 40.0]))
    assert torch.allclose(det.boxes[2], torch.tensor([75.0, 75.0, 85.0, 85.0]))


def test_loose_iou_keeps_overlapping_box():
    (det,) = postprocess(hand_made(), (100, 100), conf_thresh=0.25, iou_thresh=0.95)
    assert det.labels.tolist() == [0, 0, 1, 0]


def test_cap_classes_and_threshold():
    (det,) = postprocess(hand_made(), (100, 100), max_det=2)
    assert len(det) == 2 and det.scores.tolist() == pytest.approx([0.81, 0.63])
    (det,) = postprocess(hand_made(), (100, 100), classes=[1])
    assert det.labels.tolist() == [1]
    (det,) = postprocess(hand_made(), (100, 100), conf_thresh=0.9)
    assert len(det) == 0 and det.boxes.shape == (0, 4)


def test_multi_label_gives_each_passing_class():
    pred = torch.tensor([[row(0.5, 0.5, 0.2, 0.2, 1.0, [0.6, 0.7])]])
    (single,) = postprocess(pred, (100, 100), conf_thresh=0.5)
    (multi,) = postprocess(pred, (100, 100), conf_thresh=0.5, multi_label=True)
    assert single.labels.tolist() == [1]
    assert sorted(multi.labels.tolist()) == [0, 1]


def test_batch_images_are_independent():
    pred = torch.cat([hand_made(), torch.zeros_like(hand_made())])
    first, second = postprocess(pred, (100, 100))
    assert len(first) == 3 and len(second) == 0


def test_scale_to_original_undoes_letterbox():
    box = letterbox_params((50, 200), (100, 100))  # 200x50 -> 100x25 at pad_y 37
    det = Detections(
        torch.tensor([[0.0, 37.0, 100.0, 62.0], [-5.0, 30.0, 50.0, 50.0]]),
        torch.tensor([0.9, 0.5]),
        torch.tensor([0, 1]),
    )
    (out,) = scale_to_original([det], [box])
    assert torch.allclose(out.boxes[0], torch.tensor([0.0, 0.0, 200.0, 50.0]))
    assert out.boxes[1].tolist() == pytest.approx([0.0, 0.0, 100.0, 26.0])
    with pytest.raises(ValueError):
        scale_to_original([det], [])
