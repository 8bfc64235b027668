"""AlexeyAB's IoU box losses as Darknet computes them: values and hand-written gradients.

Darknet does not differentiate a GIoU/DIoU/CIoU function; ``dx_box_iou`` (AB ``src/box.c``) writes
the derivative of the IoU (plus the GIoU, DIoU or CIoU penalty's terms) with respect to the
predicted ``(x, y, w, h)`` by hand, in normalised units, and ``delta_yolo_box`` (AB
``src/yolo_layer.c``) puts it on the raw outputs: no ``sigma'`` and no ``1/W`` on x and y, only
``exp(t_w)`` on w and h (nothing with ``new_coords``), times ``iou_normalizer``, non-finite values
set to 0, then clipped to ``+-max_delta``. :func:`iou_gradient` is that derivative, vectorised;
:func:`iou_value` gives the values Darknet reports (``box_giou``, ``box_diou`` with its exponent 0.6,
``box_ciou``). Boxes are ``(cx, cy, w, h)`` rows ``[R, 4]``, normalised to the input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: ``box_diou`` raises the normalised centre distance to this power (the gradient does not).
DIOU_EXPONENT = 0.6


def _edges(box: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(top, bottom, left, right)`` of ``(cx, cy, w, h)`` rows."""
    x, y, w, h = box.unbind(-1)
    return y - h / 2, y + h / 2, x - w / 2, x + w / 2


def _iou_parts(pred: Tensor, truth: Tensor) -> tuple[Tensor, ...]:
    """Darknet's ``box_iou`` pieces: ``(iou, union, enclosing w, enclosing h, squared centre
    distance)``; the intersection is 0 for disjoint boxes (``box_intersection``)."""
    pt, pb, pl, pr = _edges(pred)
    tt, tb, tl, tr = _edges(truth)
    iw = torch.minimum(pr, tr) - torch.maximum(pl, tl)
    ih = torch.minimum(pb, tb) - torch.maximum(pt, tt)
    inter = torch.where((iw < 0) | (ih < 0), torch.zeros_like(iw), iw * ih)
    union = pred[:, 2] * pred[:, 3] + truth[:, 2] * truth[:, 3] - inter
    safe = torch.where(union == 0, torch.ones_like(union), union)
    iou = torch.where((inter == 0) | (union == 0), torch.zeros_like(iw), inter / safe)
    cw = torch.maximum(pr, tr) - torch.minimum(pl, tl)
    ch = torch.maximum(pb, tb) - torch.minimum(pt, tt)
    dist = (pred[:, 0] - truth[:, 0]) ** 2 + (pred[:, 1] - truth[:, 1]) ** 2
    return iou, union, cw, ch, dist


def iou_value(pred: Tensor, truth: Tensor, kind: str) -> Tensor:
    """``box_iou|box_giou|box_diou|box_ciou`` of aligned rows -> ``[R]`` (``kind``: the ``iou_loss``
    name; ``mse`` gives the plain IoU)."""
    iou, union, cw, ch, dist = _iou_parts(pred, truth)
    if kind == "mse":
        return iou
    if kind == "giou":
        area = cw * ch
        safe = torch.where(area == 0, torch.ones_like(area), area)
        return torch.where(area == 0, iou, iou - (area - union) / safe)
    diagonal = cw * cw + ch * ch
    safe = torch.where(diagonal == 0, torch.ones_like(diagonal), diagonal)
    if kind == "diou":
        return torch.where(diagonal == 0, iou, iou - (dist / safe) ** DIOU_EXPONENT)
    if kind == "ciou":
        ar = torch.atan(truth[:, 2] / truth[:, 3]) - torch.atan(pred[:, 2] / pred[:, 3])
        v = 4.0 / math.pi**2 * ar * ar
        alpha = v / (1.0 - iou + v + 1e-6)
        return torch.where(diagonal == 0, iou, iou - (dist / safe + alpha * v))
    raise ValueError(f"unknown IoU kind {kind!r}, expected mse|giou|diou|ciou")


def iou_gradient(pred: Tensor, truth: Tensor, kind: str) -> Tensor:
    """AlexeyAB's ``dx_box_iou``: d(IoU kind)/d(x, y, w, h) of each ``pred`` row, ``[R, 4]``.

    The direction that raises the IoU (Darknet's delta before its scale factors). As in Darknet,
    the w and h components are ``d/d(right) - d/d(left)`` (not halved), the DIoU/CIoU distance term
    is differentiated without ``box_diou``'s exponent, and disjoint boxes take only the penalty's
    gradient. ``pred`` widths and heights must be positive (Darknet sets a 0 to 1 first).
    """
    if kind not in ("giou", "diou", "ciou"):
        raise ValueError(f"no IoU gradient for {kind!r}, expected giou|diou|ciou")
    px, py, pw, ph = pred.unbind(-1)
    tx, ty, tw, th = truth.unbind(-1)
    pt, pb, pl, pr = _edges(pred)
    tt, tb, tl, tr = _edges(truth)
    zero = torch.zeros_like(px)

    area_p = (pb - pt) * (pr - pl)
    area_t = (tb - tt) * (tr - tl)
    ih = torch.minimum(pb, tb) - torch.maximum(pt, tt)
    iw = torch.minimum(pr, tr) - torch.maximum(pl, tl)
    inter = iw * ih
    union = area_p + area_t - inter
    cw = torch.maximum(pr, tr) - torch.minimum(pl, tl)
    ch = torch.maximum(pb, tb) - torch.minimum(pt, tt)
    disjoint = (iw <= 0) | (ih <= 0)

    # d(area_p), d(inter), d(union), d(enclosing area) with respect to top, bottom, left, right
    d_area = torch.stack([-(pr - pl), pr - pl, -(pb - pt), pb - pt], dim=-1)
    d_inter = torch.stack(
        [
            torch.where(pt > tt, -iw, zero),
            torch.where(pb < tb, iw, zero),
            torch.where(pl > tl, -ih, zero),
            torch.where(pr < tr, ih, zero),
        ],
        dim=-1,
    )
    d_union = d_area - d_inter
    u = union.unsqueeze(-1)
    i = inter.unsqueeze(-1)
    safe_u = torch.where(u > 0, u, torch.ones_like(u))
    d_iou = torch.where(u > 0, (u * d_inter - i * d_union) / (safe_u * safe_u), torch.zeros_like(u))

    if kind == "giou":
        c = (cw * ch).unsqueeze(-1)
        d_enclosing = torch.stack(
            [
                torch.where(pt < tt, -cw, zero),
                torch.where(pb > tb, cw, zero),
                torch.where(pl < tl, -ch, zero),
                torch.where(pr > tr, ch, zero),
            ],
            dim=-1,
        )
        penalty = (c * d_union - u * d_enclosing) / (c * c)
        d_iou = torch.where(c > 0, d_iou + penalty, d_iou)
        d_iou = torch.where(disjoint.unsqueeze(-1), penalty, d_iou)

    d_top, d_bottom, d_left, d_right = d_iou.unbind(-1)
    grad = torch.stack([d_left + d_right, d_top + d_bottom, d_right - d_left, d_bottom - d_top], -1)
    if kind == "giou":
        return grad

    # DIoU / CIoU: the normalised centre distance S / C with C the enclosing box's squared diagonal
    diagonal = cw * cw + ch * ch
    dist = (px - tx) ** 2 + (py - ty) ** 2
    one = torch.ones_like(px)
    dcw_dx = torch.where(pr > tr, one, zero) - torch.where(pl < tl, one, zero)
    dcw_dw = torch.where(pr > tr, 0.5 * one, zero) + torch.where(pl < tl, 0.5 * one, zero)
    dch_dy = torch.where(pb > tb, one, zero) - torch.where(pt < tt, one, zero)
    dch_dh = torch.where(pb > tb, 0.5 * one, zero) + torch.where(pt < tt, 0.5 * one, zero)
    c2 = diagonal * diagonal
    penalty = torch.stack(
        [
            (2 * (tx - px) * diagonal - 2 * cw * dcw_dx * dist) / c2,
            (2 * (ty - py) * diagonal - 2 * ch * dch_dy * dist) / c2,
            2 * cw * dcw_dw * dist / c2,
            2 * ch * dch_dh * dist / c2,
        ],
        dim=-1,
    )
    if kind == "ciou":
        ar = torch.atan(tw / th) - torch.atan(pw / ph)
        v = 4.0 / math.pi**2 * ar * ar
        alpha = v / (1.0 - inter / union + v + 1e-6)
        ar_grad = torch.stack(
            [zero, zero, alpha * 8 / math.pi**2 * ar * ph, -alpha * 8 / math.pi**2 * ar * pw], -1
        )
        penalty = penalty + ar_grad
    positive = (diagonal > 0).unsqueeze(-1)
    grad = torch.where(positive, grad + penalty, grad)
    return torch.where(disjoint.unsqueeze(-1), penalty, grad)
