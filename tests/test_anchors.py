from pathlib import Path

import numpy as np
import pytest

from darkyolo.anchors import (
    anchor_owners,
    boxes_wh,
    cfg_anchors,
    class_anchor_iou,
    elbow,
    from_units,
    head_units,
    iou_thresh_range,
    kmeans_anchors,
    labelled_boxes_wh,
    mean_iou,
    sort_by_area,
    to_units,
    wh_iou_matrix,
    write_cfg_anchors,
)
from darkyolo.darknet.cfg import load_cfg
from darkyolo.darknet.edits import anchor_masks, anchors_line
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
YOLOV2_VOC = np.array(
    [
        [1.3221, 1.73145],
        [3.19275, 4.00944],
        [5.05587, 8.09892],
        [9.47112, 4.84053],
        [11.2364, 10.0071],
    ]
)


def test_iou_of_shared_centre_boxes():
    iou = wh_iou_matrix([[2, 2], [1, 4]], [[2, 2], [1, 1], [4, 1]])
    np.testing.assert_allclose(iou, [[1, 0.25, 1 / 3], [1 / 3, 0.25, 1 / 7]])
    assert mean_iou([[2, 2], [1, 4]], [[2, 2]]) == pytest.approx(2 / 3)
    # scaling all widths (or heights) by one factor leaves IoU alone
    wh, anchors = np.array([[3.0, 1.0], [0.5, 2.0]]), np.array([[1.0, 1.0], [2.0, 0.5]])
    scale = np.array([7.0, 0.3])
    np.testing.assert_allclose(
        wh_iou_matrix(wh * scale, anchors * scale), wh_iou_matrix(wh, anchors)
    )


def _clustered(seed=1, per=2000):
    centres = np.array([[0.05, 0.08], [0.12, 0.3], [0.3, 0.15], [0.4, 0.55], [0.8, 0.7]])
    rng = np.random.default_rng(seed)
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.04, (per, 2))) for c in centres])
    return centres, rng.permutation(wh)


def test_kmeans_recovers_known_clusters():
    centres, wh = _clustered()
    anchors, score = kmeans_anchors(wh, 5)
    np.testing.assert_allclose(anchors, centres, rtol=0.02)
    assert score > 0.9
    assert score == pytest.approx(mean_iou(wh, anchors))
    # deterministic for a seed
    again, _ = kmeans_anchors(wh, 5)
    np.testing.assert_array_equal(anchors, again)


def test_result_is_a_fixed_point_of_lloyd():
    rng = np.random.default_rng(3)
    wh = np.exp(rng.normal(-2, 0.6, (3000, 2)))
    for center, reduce in (("mean", np.mean), ("median", np.median)):
        anchors, _ = kmeans_anchors(wh, 6, restarts=2, center=center)
        labels = wh_iou_matrix(wh, anchors).argmax(axis=1)
        for j in range(6):
            np.testing.assert_allclose(anchors[j], reduce(wh[labels == j], axis=0), rtol=1e-9)


def test_sampled_restarts_then_refined_on_all_boxes():
    rng = np.random.default_rng(4)
    wh = np.exp(rng.normal(-2, 0.6, (5000, 2)))
    anchors, score = kmeans_anchors(wh, 4, sample=300)
    labels = wh_iou_matrix(wh, anchors).argmax(axis=1)
    for j in range(4):
        np.testing.assert_allclose(anchors[j], wh[labels == j].mean(axis=0), rtol=1e-9)
    assert score == pytest.approx(mean_iou(wh, anchors))


def test_few_distinct_boxes_and_errors():
    wh = np.array([[1.0, 1.0]] * 5 + [[2.0, 3.0]] * 5)
    anchors, score = kmeans_anchors(wh, 3)
    assert score == pytest.approx(1.0) and len(anchors) == 3
    with pytest.raises(DataError, match="at least 11 boxes"):
        kmeans_anchors(wh, 11)
    with pytest.raises(DataError, match="positive"):
        kmeans_anchors([[1.0, 0.0], [1.0, 1.0]], 1)
    with pytest.raises(DataError, match="shape"):
        kmeans_anchors(np.ones((3, 3)), 1)


def test_elbow_grows_with_k():
    _, wh = _clustered(per=200)
    ious = elbow(wh, [1, 2, 5])
    assert ious[0] < ious[1] < ious[2]


def test_units_and_cfg_line():
    wh = np.array([[0.5, 0.25]])
    np.testing.assert_allclose(to_units(wh, 416, "grid"), [[6.5, 3.25]])
    np.testing.assert_allclose(to_units(wh, (608, 320), "pixels"), [[304, 80]])
    np.testing.assert_allclose(from_units(to_units(wh, 416, "grid"), 416, "grid"), wh)
    with pytest.raises(DataError, match="units"):
        to_units(wh, 416, "cells")
    assert anchors_line(np.array([[1.32214, 1.7], [10.0, 3.12345]]), "grid") == (
        "anchors=1.3221,1.7, 10,3.1234"
    )
    assert anchors_line(np.array([[10.04, 13.96]]), "pixels") == "anchors=10,14"
    np.testing.assert_array_equal(sort_by_area([[3, 3], [1, 2], [2, 2]]), [[1, 2], [2, 2], [3, 3]])


def test_boxes_wh_from_records():
    records = [
        ImageRecord("a.jpg", 100, 50, [[0, 0, 10, 5], [10, 10, 10, 20]], [0, 0]),
        ImageRecord("b.jpg", 10, 10),
    ]
    # the zero-width box is left out; letterboxed, the 100x50 image fills half the input's height
    np.testing.assert_allclose(boxes_wh(records, letterbox=False), [[0.1, 0.1]])
    np.testing.assert_allclose(boxes_wh(records), [[0.1, 0.05]])
    wh, labels = labelled_boxes_wh(
        [ImageRecord("c.jpg", 10, 10, [[0, 0, 0, 5], [0, 0, 2, 5]], [1, 2])]
    )
    np.testing.assert_allclose(wh, [[0.2, 0.5]])
    assert labels.tolist() == [2]


def test_class_anchor_table_and_iou_thresh_range():
    # class 0: small squares; class 1: 4x larger squares and one tall box; anchors fit each kind
    wh = np.array([[1.0, 1.0], [1.0, 1.0], [4.0, 4.0], [4.0, 4.0], [2.0, 4.0]])
    labels = np.array([0, 0, 1, 1, 1])
    anchors = np.array([[1.0, 1.0], [4.0, 4.0], [2.0, 4.0]])
    table = class_anchor_iou(wh, labels, anchors, num_classes=3)
    # class 0 with anchor 1: 1/16; class 1's median box (4x4) with anchor 2: 8/16
    np.testing.assert_allclose(table[0], [1.0, 1 / 16, 1 / 8])
    np.testing.assert_allclose(table[1], [1 / 16, 1.0, 0.5])
    assert np.isnan(table[2]).all()  # no boxes
    owners = anchor_owners(wh, labels, anchors)
    assert owners.tolist() == [0, 1, 1]
    cross, own = iou_thresh_range(table, owners)
    # highest with another's anchor: class 0 with anchor 2 (1/8); lowest with its own: 0.5
    assert (cross, own) == pytest.approx((1 / 8, 0.5))
    # one owner: nothing to separate
    assert iou_thresh_range(table, np.array([0, 0, -1])) is None


def test_bccd_kmeans_beats_yolov2_voc_default_anchors():
    from darkyolo.data.formats.voc import parse_voc_xml

    folder = DATA / "bccd" / "Annotations"
    if not folder.is_dir():
        pytest.skip("shared data not present")
    parsed = [parse_voc_xml(path) for path in sorted(folder.glob("*.xml"))]
    wh = np.concatenate([(v.boxes[:, 2:] - v.boxes[:, :2]) / [v.width, v.height] for v in parsed])
    wh = wh[(wh > 0).all(axis=1)]
    assert len(wh) == 4886
    _, score = kmeans_anchors(wh, 5)
    default = mean_iou(wh, from_units(YOLOV2_VOC, 416, "grid"))
    assert score > default + 0.2
    assert 0.8 < score < 0.9 and 0.45 < default < 0.6


def test_masks_for_new_anchor_counts():
    assert anchor_masks([[6, 7, 8], [3, 4, 5], [0, 1, 2]], 9, 9) == [
        [6, 7, 8],
        [3, 4, 5],
        [0, 1, 2],
    ]
    assert anchor_masks([[6, 7, 8], [3, 4, 5], [0, 1, 2]], 9, 7) == [[4, 5, 6], [2, 3], [0, 1]]
    assert anchor_masks([[3, 4, 5], [1, 2, 3]], 6, 4) == [[2, 3], [0, 1]]
    with pytest.raises(DataError, match="cannot feed 3"):
        anchor_masks([[2], [1], [0]], 3, 2)


def test_write_cfg_region_and_yolo(tmp_path):
    anchors = np.array([[0.8, 1.0], [2.0, 2.2], [1.9, 2.8], [2.4, 3.0], [4.3, 5.2], [6.0, 7.0]])
    region = load_cfg(write_cfg_anchors("yolov2-voc", tmp_path / "v2.cfg", anchors, 3))
    assert head_units(region) == "grid"
    head = region.heads[0]
    assert (head.num, head.classes) == (6, 3)
    np.testing.assert_allclose(cfg_anchors(region), anchors)
    assert region.layers[-2].filters == 6 * 8

    pixels = anchors * 30
    v3 = load_cfg(write_cfg_anchors("yolov3", tmp_path / "v3.cfg", pixels, 2))
    assert head_units(v3) == "pixels"
    assert [h.mask for h in v3.heads] == [(4, 5), (2, 3), (0, 1)]
    assert all(h.classes == 2 and h.num == 6 for h in v3.heads)
    filters = [v3.layers[i - 1].filters for i in v3.head_indices]
    assert filters == [2 * 7] * 3
    np.testing.assert_allclose(cfg_anchors(v3), pixels)
