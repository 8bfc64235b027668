"""YOLOv3 [yolo] loss: gradients equal pjreddie Darknet's deltas (independent loop reference)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import complete_box_iou, generalized_box_iou

from darkyolo.darknet.cfg import YoloSpec
from darkyolo.losses import DetectionLoss, YoloLoss
from darkyolo.losses.assign import prepare_truths
from darkyolo.models.heads import YoloHead

# --------------------------------------------------------------------------------------------
# Reference: pjreddie forward_yolo_layer (+ AlexeyAB's scale_x_y, normalizers, label smoothing),
# one truth at a time; backward passes the delta through unchanged.
# --------------------------------------------------------------------------------------------


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _overlap(x1: float, w1: float, x2: float, w2: float) -> float:
    return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)


def _box_iou(a: tuple, b: tuple) -> float:
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def dx_box_iou_reference(pred: tuple, truth: tuple, kind: str) -> list[float]:
    """AlexeyAB box.c dx_box_iou, one box pair at a time: d(IoU kind)/d(x, y, w, h)."""
    px, py, pw, ph = pred
    tx, ty, tw, th = truth
    pt, pb, pl, pr = py - ph / 2, py + ph / 2, px - pw / 2, px + pw / 2
    tt, tb, tl, tr = ty - th / 2, ty + th / 2, tx - tw / 2, tx + tw / 2
    area_p, area_t = (pb - pt) * (pr - pl), (tb - tt) * (tr - tl)
    ih = min(pb, tb) - max(pt, tt)
    iw = min(pr, tr) - max(pl, tl)
    inter = iw * ih
    union = area_p + area_t - inter
    dist = (px - tx) ** 2 + (py - ty) ** 2
    cw = max(pr, tr) - min(pl, tl)
    ch = max(pb, tb) - min(pt, tt)
    c_area = cw * ch
    d_area = {"t": -(pr - pl), "b": pr - pl, "l": -(pb - pt), "r": pb - pt}
    d_inter = {
        "t": -iw if pt > tt else 0.0,
        "b": iw if pb < tb else 0.0,
        "l": -ih if pl > tl else 0.0,
        "r": ih if pr < tr else 0.0,
    }
    d_union = {k: d_area[k] - d_inter[k] for k in d_area}
    d_c = {
        "t": -cw if pt < tt else 0.0,
        "b": cw if pb > tb else 0.0,
        "l": -ch if pl < tl else 0.0,
        "r": ch if pr > tr else 0.0,
    }
    d = {k: 0.0 for k in d_area}
    if union > 0:
        d = {k: (union * d_inter[k] - inter * d_union[k]) / union**2 for k in d_area}
    if kind == "giou":
        g = {k: (c_area * d_union[k] - union * d_c[k]) / c_area**2 for k in d_area}
        if c_area > 0:
            d = {k: d[k] + g[k] for k in d_area}
        if iw <= 0 or ih <= 0:
            d = g
    grad = [d["l"] + d["r"], d["t"] + d["b"], d["r"] - d["l"], d["b"] - d["t"]]
    if kind in ("diou", "ciou"):
        c = cw * cw + ch * ch
        dcw_dx = (1.0 if pr > tr else 0.0) - (1.0 if pl < tl else 0.0)
        dcw_dw = (0.5 if pr > tr else 0.0) + (0.5 if pl < tl else 0.0)
        dch_dy = (1.0 if pb > tb else 0.0) - (1.0 if pt < tt else 0.0)
        dch_dh = (0.5 if pb > tb else 0.0) + (0.5 if pt < tt else 0.0)
        extra = [
            (2 * (tx - px) * c - 2 * cw * dcw_dx * dist) / c**2,
            (2 * (ty - py) * c - 2 * ch * dch_dy * dist) / c**2,
            2 * cw * dcw_dw * dist / c**2,
            2 * ch * dch_dh * dist / c**2,
        ]
        if kind == "ciou":
            ar = math.atan(tw / th) - math.atan(pw / ph)
            v = 4 / math.pi**2 * ar * ar
            alpha = v / (1 - inter / union + v + 1e-6)
            extra[2] += alpha * 8 / math.pi**2 * ar * ph
            extra[3] += alpha * -8 / math.pi**2 * ar * pw
        if c > 0:
            grad = [g + e for g, e in zip(grad, extra)]
        if iw <= 0 or ih <= 0:
            grad = extra
    return grad


def yolo_reference_delta(raw: torch.Tensor, truths: list[list[tuple]], spec: YoloSpec, input_hw):
    """Darknet's delta (-dL/dz) for one [yolo] raw map; truths[b] = [(cls, x, y, w, h)].

    With ``new_coords`` the map holds the conv's logistic outputs and the delta is on them.
    """
    batch, _, height, width = raw.shape
    net_h, net_w = input_hw
    n_mask, classes = len(spec.mask), spec.classes
    z = raw.detach().double().view(batch, n_mask, 5 + classes, height, width).tolist()
    delta = torch.zeros(batch, n_mask, 5 + classes, height, width, dtype=torch.float64)
    alpha, eps = spec.scale_x_y, spec.label_smooth_eps

    def out(b, n, k, j, i):
        v = z[b][n][k][j][i]
        p = v if spec.new_coords else _sigmoid(v)
        if k in (0, 1):
            return alpha * p - (alpha - 1) / 2
        return v if k in (2, 3) else p

    def anchor(n):
        return spec.anchors[spec.mask[n]]

    def size(v: float) -> float:
        return 4 * v * v if spec.new_coords else math.exp(v)

    def pred_box(b, n, j, i):
        return (
            (i + out(b, n, 0, j, i)) / width,
            (j + out(b, n, 1, j, i)) / height,
            size(z[b][n][2][j][i]) * anchor(n)[0] / net_w,
            size(z[b][n][3][j][i]) * anchor(n)[1] / net_h,
        )

    def delta_box(truth, b, n, j, i, scale):
        if spec.iou_loss != "mse":
            grad = dx_box_iou_reference(pred_box(b, n, j, i), truth, spec.iou_loss)
            if not spec.new_coords:
                grad[2] *= math.exp(z[b][n][2][j][i])
                grad[3] *= math.exp(z[b][n][3][j][i])
            for k, g in enumerate(grad):
                g *= spec.iou_normalizer
                g = 0.0 if not math.isfinite(g) else g
                delta[b, n, k, j, i] = max(-spec.max_delta, min(spec.max_delta, g))
            return
        tx, ty = truth[0] * width - i, truth[1] * height - j
        if spec.new_coords:
            tw = math.sqrt(truth[2] * net_w / (4 * anchor(n)[0]))
            th = math.sqrt(truth[3] * net_h / (4 * anchor(n)[1]))
        else:
            tw = math.log(truth[2] * net_w / anchor(n)[0])
            th = math.log(truth[3] * net_h / anchor(n)[1])
        for k, t in enumerate((tx, ty, tw, th)):
            delta[b, n, k, j, i] = scale * (t - out(b, n, k, j, i))

    def delta_class(cls, b, n, j, i):
        if delta[b, n, 5, j, i] != 0:
            delta[b, n, 5 + cls, j, i] = (1 - eps / 2) - out(b, n, 5 + cls, j, i)
            return
        for c in range(classes):
            target = (1 - eps / 2) if c == cls else eps / 2
            delta[b, n, 5 + c, j, i] = target - out(b, n, 5 + c, j, i)

    for b in range(batch):
        boxes = [t for t in truths[b][: spec.max_boxes] if t[3] >= 0.001 and t[4] >= 0.001]
        for j in range(height):
            for i in range(width):
                for n in range(n_mask):
                    pred = pred_box(b, n, j, i)
                    best, best_t = 0.0, 0
                    for index, t in enumerate(boxes):
                        iou = _box_iou(pred, t[1:])
                        if iou > best:
                            best, best_t = iou, index
                    delta[b, n, 4, j, i] = spec.obj_normalizer * (0 - out(b, n, 4, j, i))
                    if best > spec.ignore_thresh:
                        delta[b, n, 4, j, i] = 0.0
                        if spec.objectness_smooth:
                            delta[b, n, 4, j, i] = spec.obj_normalizer * (best - out(b, n, 4, j, i))
                    if best > spec.truth_thresh:
                        t = boxes[best_t]
                        delta[b, n, 4, j, i] = spec.obj_normalizer * (1 - out(b, n, 4, j, i))
                        delta_class(t[0], b, n, j, i)
                        delta_box(t[1:], b, n, j, i, spec.iou_normalizer * (2 - t[3] * t[4]))
        for cls, *truth in boxes:
            i = min(int(truth[0] * width), width - 1)
            j = min(int(truth[1] * height), height - 1)
            best_iou, best_n = 0.0, 0
            for n, (aw, ah) in enumerate(spec.anchors):
                iou = _box_iou((0, 0, aw / net_w, ah / net_h), (0, 0, truth[2], truth[3]))
                if iou > best_iou:
                    best_iou, best_n = iou, n
            chosen = [spec.mask.index(best_n)] if best_n in spec.mask else []
            for n, anchor_index in enumerate(spec.mask):  # AlexeyAB's iou_thresh
                aw, ah = spec.anchors[anchor_index]
                iou = _box_iou((0, 0, aw / net_w, ah / net_h), (0, 0, truth[2], truth[3]))
                if anchor_index != best_n and iou > spec.iou_thresh:
                    chosen.append(n)
            for n in chosen:
                delta_box(truth, b, n, j, i, spec.iou_normalizer * (2 - truth[2] * truth[3]))
                if not spec.objectness_smooth or delta[b, n, 4, j, i] == 0:
                    delta[b, n, 4, j, i] = spec.obj_normalizer * (1 - out(b, n, 4, j, i))
                delta_class(cls, b, n, j, i)
    return delta.view_as(raw)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

ANCHORS = ((10.0, 14.0), (23.0, 27.0), (37.0, 58.0), (81.0, 82.0), (60.0, 40.0), (120.0, 90.0))


def make_spec(mask: tuple[int, ...], **overrides) -> YoloSpec:
    base = dict(anchors=ANCHORS, mask=mask, classes=3, num=6, ignore_thresh=0.3)
    base.update(overrides)
    return YoloSpec(**base)


def to_targets(truths: list[list[tuple]]) -> torch.Tensor:
    rows = [(b, *t) for b, image in enumerate(truths) for t in image]
    return torch.tensor(rows, dtype=torch.float64).view(-1, 6)


def q(v: float) -> float:
    return round(v * 1024) / 1024


INPUT_HW = (96, 128)
RANDOM_TRUTHS = [
    [
        (1, q(0.31), q(0.52), q(0.30), q(0.40)),
        (
            2,
            q(0.33),
            q(0.55),
            q(0.31),
            q(0.41),
        ),  # same cell, same anchor: overwrites, classes add up
        (0, 0.25, q(0.70), q(0.12), q(0.15)),  # x on a cell edge of both grids
        (0, 1.0, 1.0, q(0.08), q(0.12)),  # x = y = 1: last cell
        (1, q(0.6), q(0.2), 0.0005, q(0.3)),  # too small: dropped
    ],
    [(2, q(0.62), q(0.41), q(0.85), q(0.9)), (0, q(0.12), q(0.83), q(0.1), q(0.2))],
    [],  # empty image
]


def random_case(overrides: dict, seed: int = 3):
    specs = [make_spec((3, 4, 5), **overrides), make_spec((0, 1, 2), **overrides)]
    heads = [YoloHead(spec, ()) for spec in specs]
    generator = torch.Generator().manual_seed(seed)
    raws = [
        torch.randn(3, 24, h, w, generator=generator, dtype=torch.float64) * 0.8
        for h, w in ((3, 4), (6, 8))
    ]
    return specs, heads, raws


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"truth_thresh": 0.5},
        {"scale_x_y": 1.2, "label_smooth_eps": 0.1, "obj_normalizer": 0.7, "iou_normalizer": 0.5},
        {"max_boxes": 2},
        {"iou_thresh": 0.213},
        {"new_coords": True, "scale_x_y": 2.0, "iou_normalizer": 0.5},
        {"iou_loss": "giou", "iou_normalizer": 0.07, "max_delta": 0.05},
        {"iou_loss": "diou", "iou_normalizer": 0.5, "max_delta": 0.05},
        {"iou_loss": "ciou", "iou_normalizer": 0.5, "max_delta": 0.05, "scale_x_y": 1.05},
        {"iou_loss": "ciou", "iou_normalizer": 0.05, "new_coords": True, "scale_x_y": 2.0},
        {"iou_loss": "giou", "max_delta": 5.0, "iou_thresh": 0.213},
        {"objectness_smooth": True, "ignore_thresh": 0.05},
        {"objectness_smooth": True, "new_coords": True, "scale_x_y": 2.0, "ignore_thresh": 0.05},
    ],
)
def test_gradient_equals_darknet_delta(overrides: dict) -> None:
    specs, heads, raws = random_case(overrides)
    if overrides.get("new_coords"):  # the map holds the conv's logistic outputs
        raws = [torch.sigmoid(r) for r in raws]
    if overrides.get("truth_thresh"):
        # Make one prediction match the first truth closely with an anchor that is not its best,
        # so that it becomes a positive through truth_thresh.
        raws[1].view(3, 3, 8, 6, 8)[0, 1, 0:4, 3, 2] = torch.tensor([0.0, 1.0, 0.53, 0.35])
    leaves = [r.clone().requires_grad_(True) for r in raws]
    total, _ = DetectionLoss(heads)(leaves, to_targets(RANDOM_TRUTHS), INPUT_HW, seen=0)
    total.backward()
    ignored = clipped = 0
    for spec, raw, leaf in zip(specs, raws, leaves):
        expected = yolo_reference_delta(raw, RANDOM_TRUTHS, spec, INPUT_HW)
        ignored += int((expected.view(3, 3, 8, *raw.shape[2:])[:, :, 4] == 0).sum())
        clipped += int((expected.abs() == spec.max_delta).sum())
        torch.testing.assert_close(-leaf.grad, expected, rtol=1e-6, atol=1e-6)
    if overrides.get("objectness_smooth"):
        assert ignored == 0  # every slot has a target: its IoU above ignore_thresh, else 0
    else:
        assert ignored > 0  # the ignore rule was exercised
    if overrides.get("max_delta", 1.0) < 1.0:
        assert clipped > 0  # max_delta clipped some box deltas


def test_truth_thresh_makes_a_positive() -> None:
    specs, heads, raws = random_case({"truth_thresh": 0.5})
    raws[1].view(3, 3, 8, 6, 8)[0, 1, 0:4, 3, 2] = torch.tensor([0.0, 1.0, 0.53, 0.35])
    _, with_tt = DetectionLoss(heads)(raws, to_targets(RANDOM_TRUTHS), INPUT_HW, 0)
    plain = [YoloHead(make_spec(s.mask), ()) for s in specs]
    _, without = DetectionLoss(plain)(raws, to_targets(RANDOM_TRUTHS), INPUT_HW, 0)
    assert with_tt["obj"] > without["obj"]


def test_iou_thresh_gives_a_truth_every_anchor_above_it() -> None:
    """Anchors 32 and 40 px in one head: a 36 px truth is best with 40 (IoU .81) and, with
    iou_thresh .5, also positive on 32 (IoU .79); the 100 px anchor (IoU .13) stays out."""
    spec = YoloSpec(
        anchors=((32.0, 32.0), (40.0, 40.0), (100.0, 100.0)), mask=(0, 1, 2), classes=2, num=3
    )
    raw = torch.zeros(1, 21, 4, 4, dtype=torch.float64)
    targets = torch.tensor([[0, 1, 0.3, 0.6, 36 / 128, 36 / 128]], dtype=torch.float64)
    (plain,), _, plain_parts = run([YoloHead(spec, ())], [raw], targets)
    multi_spec = YoloSpec(**{**spec.__dict__, "iou_thresh": 0.5})
    (multi,), _, multi_parts = run([YoloHead(multi_spec, ())], [raw], targets)
    positives = [(multi.view(3, 7, 4, 4)[n, 5:, 2, 1] != 0).any().item() for n in range(3)]
    assert positives == [True, True, False]
    assert [(plain.view(3, 7, 4, 4)[n, 5:, 2, 1] != 0).any().item() for n in range(3)] == [
        False,
        True,
        False,
    ]
    assert multi_parts["obj"].item() == pytest.approx(2 * plain_parts["obj"].item())


# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------


def single_head(**overrides) -> YoloHead:
    spec = YoloSpec(anchors=((32.0, 32.0),), mask=(0,), classes=2, num=1, **overrides)
    return YoloHead(spec, ())


def run(heads, raws, targets, input_hw=(128, 128)):
    leaves = [r.clone().requires_grad_(True) for r in raws]
    total, parts = DetectionLoss(heads)(leaves, targets, input_hw, seen=0)
    total.backward()
    return [leaf.grad for leaf in leaves], total, parts


def test_single_box_targets_by_hand() -> None:
    """One anchor 32x32 px, 4x4 grid on 128x128, raw zeros (sigma = .5)."""
    head = single_head(ignore_thresh=1.0)
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    # Class 1 at (0.3, 0.6), w .25, h .125: cell i = 1, j = 2, tx = .2, ty = .4,
    # tw = ln(.25 * 128 / 32) = 0, th = ln(.125 * 128 / 32) = ln .5; box scale 2 - w h.
    targets = torch.tensor([[0, 1, 0.3, 0.6, 0.25, 0.125]], dtype=torch.float64)
    (grad,), total, parts = run([head], [raw], targets)
    s = 2 - 0.25 * 0.125
    assert grad[0, :, 2, 1].tolist() == pytest.approx(
        [s * (0.5 - 0.2), s * (0.5 - 0.4), 0.0, s * (0 - math.log(0.5)), -0.5, 0.5, -0.5]
    )
    ln2 = math.log(2)
    assert parts["box"].item() == pytest.approx(s * (2 * ln2 + 0.5 * math.log(0.5) ** 2))
    assert parts["obj"].item() == pytest.approx(ln2)
    assert parts["cls"].item() == pytest.approx(2 * ln2)
    assert parts["noobj"].item() == pytest.approx(15 * ln2)
    assert total.item() == pytest.approx(sum(v.item() for v in parts.values()))
    elsewhere = torch.ones(4, 4, dtype=torch.bool)
    elsewhere[2, 1] = False
    assert grad[0, 4][elsewhere].tolist() == pytest.approx([0.5] * 15)
    assert grad[0, [0, 1, 2, 3, 5, 6]][:, elsewhere].abs().max().item() == 0


@pytest.mark.parametrize(("x", "cell", "tx"), [(0.25, 1, 0.0), (0.5, 2, 0.0), (1.0, 3, 1.0)])
def test_box_on_a_cell_edge(x: float, cell: int, tx: float) -> None:
    head = single_head(ignore_thresh=1.0)
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    targets = torch.tensor([[0, 0, x, 0.6, 0.25, 0.25]], dtype=torch.float64)
    (grad,), _, _ = run([head], [raw], targets)
    positive = (grad[0, 5] != 0).nonzero().tolist()
    assert positive == [[2, cell]]
    assert grad[0, 0, 2, cell].item() == pytest.approx((2 - 0.0625) * (0.5 - tx))


def test_empty_image_has_only_no_object_terms() -> None:
    head = YoloHead(make_spec((0, 1, 2)), ())
    raw = torch.randn(2, 24, 3, 4, dtype=torch.float64)
    (grad,), _, parts = run([head], [raw], torch.zeros(0, 6), INPUT_HW)
    assert parts["box"].item() == parts["obj"].item() == parts["cls"].item() == 0.0
    obj = raw.view(2, 3, 8, 3, 4)[:, :, 4]
    assert parts["noobj"].item() == pytest.approx(torch.nn.functional.softplus(obj).sum().item())
    g = grad.view(2, 3, 8, 3, 4)
    torch.testing.assert_close(g[:, :, 4], torch.sigmoid(obj))
    assert g[:, :, [0, 1, 2, 3, 5, 6, 7]].abs().max().item() == 0


def test_two_truths_in_one_slot_later_box_wins_classes_add_up() -> None:
    head = YoloHead(YoloSpec(anchors=((32.0, 32.0),), mask=(0,), classes=3, num=1), ())
    raw = torch.zeros(1, 8, 2, 2, dtype=torch.float64)
    targets = torch.tensor(
        [[0, 0, 0.1, 0.1, 0.25, 0.25], [0, 2, 0.4, 0.3, 0.5, 0.5]], dtype=torch.float64
    )
    (grad,), _, parts = run([head], [raw], targets, (64, 64))
    g = grad[0, :, 0, 0]
    s = 2 - 0.25
    assert g[0].item() == pytest.approx(s * (0.5 - 0.8))  # tx = .4 * 2 - 0, the second truth
    assert g[2].item() == pytest.approx(-s * math.log(0.5 * 64 / 32))
    assert g[5:].tolist() == pytest.approx([-0.5, 0.5, -0.5])  # classes 0 and 2 both positive
    assert parts["obj"].item() == pytest.approx(math.log(2))  # one positive


def test_truth_of_another_heads_anchor_is_skipped_but_still_ignores() -> None:
    """Anchors 10 px and 100 px; this head has only the first. A 100 px truth belongs elsewhere."""
    spec = YoloSpec(anchors=((10.0, 10.0), (100.0, 100.0)), mask=(0,), classes=2, num=2)
    head = YoloHead(spec, ())
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    # Make the prediction at cell (1, 1) a 100 px box centred on the truth: IoU 1 > ignore_thresh.
    raw[0, 2:4, 1, 1] = math.log(10.0)
    targets = torch.tensor([[0, 1, 0.375, 0.375, 100 / 128, 100 / 128]], dtype=torch.float64)
    (grad,), _, parts = run([head], [raw], targets)
    assert parts["box"].item() == parts["obj"].item() == parts["cls"].item() == 0.0
    assert grad[0, 4, 1, 1].item() == 0.0  # ignored: no push towards 0
    assert (grad[0, 4] != 0).sum().item() == 15
    # The other head (mask 1) takes it.
    other = YoloHead(YoloSpec(anchors=spec.anchors, mask=(1,), classes=2, num=2), ())
    _, _, parts = run([other], [raw], targets)
    assert parts["obj"].item() > 0


@pytest.mark.parametrize(
    ("kind", "iou_fn"), [("giou", generalized_box_iou), ("ciou", complete_box_iou)]
)
def test_iou_loss_replaces_the_coordinate_term(kind: str, iou_fn) -> None:
    head = single_head(ignore_thresh=1.0, iou_loss=kind, iou_normalizer=0.75)
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    raw[0, 0:4, 2, 1] = torch.tensor([0.3, -0.2, 0.1, -0.4], dtype=torch.float64)
    targets = torch.tensor([[0, 1, 0.3, 0.6, 0.25, 0.125]], dtype=torch.float64)
    (grad,), _, parts = run([head], [raw], targets)
    t = raw[0, 0:4, 2, 1]
    cx, cy = (1 + torch.sigmoid(t[0])) * 32, (2 + torch.sigmoid(t[1])) * 32
    w, h = 32 * torch.exp(t[2]), 32 * torch.exp(t[3])
    pred = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]).view(1, 4)
    truth = torch.tensor([[0.3 * 128 - 16, 0.6 * 128 - 8, 0.3 * 128 + 16, 0.6 * 128 + 8]])
    expected = 0.75 * (1 - iou_fn(pred, truth.double())[0, 0])
    assert parts["box"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.isfinite(grad).all() and grad[0, 0:4, 2, 1].abs().max() > 0


@pytest.mark.parametrize("iou_loss", ["mse", "ciou"])
def test_rescore_targets_the_objectness_at_the_current_iou(iou_loss: str) -> None:
    """Raw zeros: the 32x32 px prediction at cell (1, 2) is centred at (48, 80) px; the truth is
    32x16 px at (38.4, 76.8). Objectness target = their IoU, and the IoU passes no gradient."""
    head = single_head(ignore_thresh=1.0, rescore=True, iou_loss=iou_loss)
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    targets = torch.tensor([[0, 1, 0.3, 0.6, 0.25, 0.125]], dtype=torch.float64)
    (grad,), _, parts = run([head], [raw], targets)
    inter = (54.4 - 32.0) * (84.8 - 68.8)  # x: 22.4 px overlap, y: the whole 16 px
    iou = inter / (32 * 32 + 32 * 16 - inter)
    assert parts["obj"].item() == pytest.approx(math.log(2))  # BCE(0, t) = ln 2 for any t
    assert grad[0, 4, 2, 1].item() == pytest.approx(0.5 - iou)
    (plain,), _, _ = run([single_head(ignore_thresh=1.0, iou_loss=iou_loss)], [raw], targets)
    torch.testing.assert_close(grad[0, 0:4], plain[0, 0:4])  # box terms untouched


def test_yolo_loss_alone_returns_named_parts() -> None:
    head = single_head()
    raw = torch.zeros(2, 7, 4, 4)
    truths = prepare_truths(torch.tensor([[1, 0, 0.5, 0.5, 0.2, 0.2]]), 2, 2)
    parts = YoloLoss(head)(raw, truths, (128, 128))
    assert set(parts) == {"box", "obj", "noobj", "cls"}


def test_half_precision_maps_compute_in_float32() -> None:
    _, heads, raws = random_case({})
    targets = to_targets(RANDOM_TRUTHS)
    reference, _ = DetectionLoss(heads)([r.half().float() for r in raws], targets, INPUT_HW, 0)
    for dtype in (torch.float16, torch.bfloat16):
        low = [r.to(dtype).requires_grad_(True) for r in raws]
        total, parts = DetectionLoss(heads)(low, targets, INPUT_HW, 0)
        assert total.dtype == torch.float32
        assert all(v.dtype == torch.float32 for v in parts.values())
        total.backward()
        assert all(leaf.grad.dtype == dtype for leaf in low)
        if dtype == torch.float16:
            assert total.item() == pytest.approx(reference.item(), rel=1e-6)
