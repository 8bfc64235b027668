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


def _darknet_diou(a: list[float], b: list[float], beta: float) -> float:
    """AlexeyAB box_diounms on xyxy boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    inter = 0.0 if ix < 0 or iy < 0 else ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = 0.0 if inter == 0 else inter / union
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    c = cw * cw + ch * ch
    d = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    return iou if c == 0 else iou - (d / c) ** beta


@pytest.mark.parametrize(("thresh", "beta"), [(0.45, 0.6), (0.3, 0.6), (0.5, 1.0)])
def test_diou_nms_matches_darknets_greedy_loop(thresh: float, beta: float) -> None:
    from darkyolo.postprocess import diou_nms

    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=generator) * 60
    wh = 10 + torch.rand(60, 2, generator=generator) * 20
    boxes = torch.cat([xy, xy + wh], dim=1).double()
    scores = torch.rand(60, generator=generator).double()
    labels = torch.randint(0, 2, (60,), generator=generator)
    kept = diou_nms(boxes, scores, labels, thresh, beta, 300).tolist()
    # diounms_sort: per class, by score, zero every later box whose DIoU with a live one > thresh
    expected: list[int] = []
    for label in (0, 1):
        order = [i for i in scores.argsort(descending=True).tolist() if labels[i] == label]
        alive = dict.fromkeys(order, True)
        for position, i in enumerate(order):
            if not alive[i]:
                continue
            for j in order[position + 1 :]:
                if _darknet_diou(boxes[i].tolist(), boxes[j].tolist(), beta) > thresh:
                    alive[j] = False
        expected += [i for i in order if alive[i]]
    assert sorted(kept) == sorted(expected)
    assert scores[kept].tolist() == sorted(scores[kept].tolist(), reverse=True)


def test_the_cfgs_nms_kind_reaches_postprocess() -> None:
    from darkyolo import load_model
    from darkyolo.postprocess import NmsMethod

    assert NmsMethod.of(load_model("yolov3-tiny-newcoords")) == NmsMethod("diounms", 0.6)
    assert NmsMethod.of(load_model("yolov3-tiny")) == NmsMethod()
    # two side-by-side boxes with IoU 0.5: plain NMS at 0.45 keeps one, DIoU-NMS keeps both
    rows = torch.tensor(
        [[[0.30, 0.5, 0.2, 0.2, 0.9, 1.0], [0.3667, 0.5, 0.2, 0.2, 0.8, 1.0]]]
    ).float()
    assert len(postprocess(rows, (300, 300), 0.25, 0.45)[0]) == 1
    assert len(postprocess(rows, (300, 300), 0.25, 0.45, nms=NmsMethod("diounms", 0.6))[0]) == 2
