"""Targets for the detection losses: truths per image, best anchors, slots and the ignore IoU.

Everything is vectorised over the batch; nothing loops in Python over truths, cells or predictions.

Conventions (as in Darknet's layers, see ``docs/training.md``):

* A truth is ``(cx, cy, w, h)`` normalised to 0..1 of the network input. Its cell is
  ``i = floor(cx * W)``, ``j = floor(cy * H)`` (clamped to ``W - 1``/``H - 1`` when ``cx`` or ``cy`` is 1).
* A head's slots are ``(b, a, j, i)``: image, anchor (index into the head's masked anchors), row,
  column, i.e. Darknet's own ``entry_index`` order. Dense per-slot tensors are ``[B, A, H, W]``.
* Truths are taken in the order given; when two truths write the same slot the later one wins
  (Darknet overwrites the deltas); :func:`resolve_slots` implements that with a deterministic
  ``scatter_reduce(amax)`` over row numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from darkyolo.boxes import box_iou_batched, normalised_cxcywh_to_xyxy, wh_iou
from darkyolo.errors import DataError

__all__ = [
    "SMALL_BOX",
    "SlotAssignment",
    "TruthBatch",
    "Writers",
    "best_anchor",
    "best_truth_iou",
    "cell_indices",
    "class_union",
    "head_view",
    "prepare_truths",
    "resolve_slots",
]

#: pjreddie's ``fill_truth_detection`` drops truths with ``w`` or ``h`` below this (normalised).
SMALL_BOX = 0.001
#: How far outside 0..1 a target value may be (rounding in augmentation) before it is a data bug.
RANGE_TOLERANCE = 1e-3
# Padding rows hold this box so that every per-row formula (log w, cells) stays finite.
_DUMMY_BOX = (0.5, 0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TruthBatch:
    """The truths of a micro-batch, padded per image, in the order given.

    ``boxes``: ``float[B, M, 4]`` ``(cx, cy, w, h)`` in 0..1 of the network input; rows that are not
    ``valid`` (padding, or dropped as too small) hold a dummy box. ``classes``: ``int64[B, M]``.
    ``valid``: ``bool[B, M]``. Column ``m`` is the ``m``-th target row of that image as given
    (dropped rows keep their column, as Darknet cuts to ``max`` before dropping small boxes).
    ``dropped_small`` / ``dropped_over_max``: how many rows were dropped for each reason.
    """

    boxes: Tensor
    classes: Tensor
    valid: Tensor
    dropped_small: int = 0
    dropped_over_max: int = 0

    def first(self, count: int) -> TruthBatch:
        """Only the first ``count`` rows of each image (a layer's ``max``)."""
        if count >= self.boxes.shape[1]:
            return self
        return replace(
            self,
            boxes=self.boxes[:, :count],
            classes=self.classes[:, :count],
            valid=self.valid[:, :count],
        )

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> TruthBatch:
        return replace(
            self,
            boxes=self.boxes.to(device=device, dtype=dtype, non_blocking=True),
            classes=self.classes.to(device, non_blocking=True),
            valid=self.valid.to(device, non_blocking=True),
        )


def prepare_truths(
    targets: Tensor, batch_size: int, num_classes: int, max_boxes: int | None = None
) -> TruthBatch:
    """``float[T, 6]`` rows ``(image, class, cx, cy, w, h)`` -> :class:`TruthBatch` on the CPU.

    Rows of each image keep their order; only the first ``max_boxes`` rows of an image are kept,
    then rows with ``w`` or ``h`` < :data:`SMALL_BOX` are dropped (pjreddie's
    ``fill_truth_detection``). Values are checked: a NaN, a non-integer or out-of-range image or
    class index, or a coordinate outside 0..1 (beyond :data:`RANGE_TOLERANCE`) raises
    :class:`DataError` naming the row, since it is a bug in the data pipeline. Coordinates are then
    clamped to 0..1. Runs on the CPU (pass CPU targets to avoid a device sync).
    """
    if targets.ndim != 2 or targets.shape[1] != 6:
        raise DataError(
            f"targets must be a tensor [T, 6] of rows (image, class, cx, cy, w, h), "
            f"got shape {tuple(targets.shape)}"
        )
    rows = targets.detach().to("cpu", torch.float64)
    _check_targets(rows, batch_size, num_classes)
    image = rows[:, 0].long()
    order = torch.argsort(image, stable=True)
    image, classes = image[order], rows[order, 1].long()
    boxes = rows[order, 2:].clamp(0.0, 1.0).float()

    counts = torch.bincount(image, minlength=batch_size)
    column = torch.arange(len(image)) - (counts.cumsum(0) - counts)[image]
    width = int(counts.max()) if len(image) else 0
    if max_boxes is not None:
        width = min(width, max_boxes)
    kept = column < width
    small = (boxes[:, 2] < SMALL_BOX) | (boxes[:, 3] < SMALL_BOX)
    use = kept & ~small

    width = max(width, 1)  # keeps reductions over truths well-defined for empty batches
    out_boxes = torch.tensor(_DUMMY_BOX).repeat(batch_size, width, 1)
    out_classes = torch.zeros(batch_size, width, dtype=torch.int64)
    valid = torch.zeros(batch_size, width, dtype=torch.bool)
    out_boxes[image[use], column[use]] = boxes[use]
    out_classes[image[use], column[use]] = classes[use]
    valid[image[use], column[use]] = True
    return TruthBatch(
        out_boxes,
        out_classes,
        valid,
        dropped_small=int((kept & small).sum()),
        dropped_over_max=int((~kept).sum()),
    )


def _check_targets(rows: Tensor, batch_size: int, num_classes: int) -> None:
    """Raise :class:`DataError` on the first malformed target row (``rows: float64[T, 6]``)."""
    expected = "rows are (image, class, cx, cy, w, h) with cx, cy, w, h normalised to 0..1"

    def fail(mask: Tensor, what: str) -> None:
        if bool(mask.any()):
            index = int(mask.nonzero()[0, 0])
            values = ", ".join(f"{v:g}" for v in rows[index].tolist())
            raise DataError(f"targets row {index} ({values}): {what}; {expected}")

    fail(~torch.isfinite(rows).all(dim=1), "not a finite number")
    image, classes, coords = rows[:, 0], rows[:, 1], rows[:, 2:]
    fail(
        (image != image.round()) | (image < 0) | (image >= batch_size),
        f"image index is not an integer in 0..{batch_size - 1}",
    )
    fail(
        (classes != classes.round()) | (classes < 0) | (classes >= num_classes),
        f"class is not an integer in 0..{num_classes - 1}",
    )
    outside = (coords < -RANGE_TOLERANCE) | (coords > 1.0 + RANGE_TOLERANCE)
    fail(outside.any(dim=1), "a coordinate is outside 0..1")


def head_view(raw: Tensor, num_anchors: int, num_classes: int) -> Tensor:
    """A raw map ``[B, A*(5+C), H, W]`` as ``[B, A, 5+C, H, W]`` in the loss's precision.

    Half and bfloat16 maps (AMP) are cast to float32; float64 stays float64 (exactness tests).
    """
    batch, channels, height, width = raw.shape
    if channels != num_anchors * (5 + num_classes):
        raise ValueError(
            f"raw map has {channels} channels, expected {num_anchors} x (5 + {num_classes})"
        )
    if raw.dtype != torch.float64:
        raw = raw.float()
    return raw.view(batch, num_anchors, 5 + num_classes, height, width)


def cell_indices(xy: Tensor, grid_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Cell of each centre: ``xy: float[..., 2]`` normalised -> ``(i, j)`` ``int64[...]`` each.

    ``i = floor(x * W)`` clamped to ``0..W-1`` (so ``x == 1`` falls in the last column), likewise ``j``.
    """
    height, width = grid_hw
    i = (xy[..., 0] * width).floor().long().clamp(0, width - 1)
    j = (xy[..., 1] * height).floor().long().clamp(0, height - 1)
    return i, j


def mask_slots(mask: tuple[int, ...], num: int) -> Tensor:
    """Each of the cfg's ``num`` anchors' slot in a head with this ``mask`` (its first match), -1
    where the head has it not: ``int64[num]``, to index by :func:`best_anchor`'s result."""
    lookup = [-1] * num
    for slot, anchor in reversed(list(enumerate(mask))):
        lookup[anchor] = slot
    return torch.tensor(lookup, dtype=torch.int64)


def best_anchor(truth_wh: Tensor, anchor_wh: Tensor) -> Tensor:
    """Index of the anchor whose shape best matches each truth (IoU at a shared centre).

    ``truth_wh: float[..., 2]``, ``anchor_wh: float[..., K, 2]`` (broadcast against ``truth_wh``),
    same units -> ``int64[...]``. Ties go to the lower index, as Darknet's strict ``>``.
    """
    return wh_iou(truth_wh.unsqueeze(-2), anchor_wh).argmax(dim=-1)


def best_truth_iou(
    pred: Tensor, truths: TruthBatch, input_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Best IoU of every prediction against the valid truths of its own image.

    ``pred: float[B, ..., 4]`` ``(cx, cy, w, h)`` normalised -> ``(iou float[B, ...], index int64[B, ...])``;
    IoU is 0 (index 0) where an image has no truth, as Darknet's ``best_iou`` starts at 0.
    """
    batch = pred.shape[0]
    pred_xyxy = normalised_cxcywh_to_xyxy(pred.reshape(batch, -1, 4), input_hw)
    truth_xyxy = normalised_cxcywh_to_xyxy(truths.boxes.to(pred.dtype), input_hw)
    iou = box_iou_batched(pred_xyxy, truth_xyxy)  # [B, N, M]
    iou = iou.masked_fill(~truths.valid.unsqueeze(1), 0.0)
    best, index = iou.max(dim=-1)
    return best.view(pred.shape[:-1]), index.view(pred.shape[:-1])


@dataclass(frozen=True)
class Writers:
    """Rows that each write a positive onto one slot ``(batch, anchor, row, col)``, in Darknet's order.

    All ``[R]``: ``batch, anchor, row, col`` int64 (``anchor`` indexes the head's masked anchors),
    ``boxes`` float ``[R, 4]`` the truth ``(cx, cy, w, h)`` normalised, ``classes`` int64, ``active``
    bool (inactive rows write nothing; their other fields must still be valid indices).
    """

    batch: Tensor
    anchor: Tensor
    row: Tensor
    col: Tensor
    boxes: Tensor
    classes: Tensor
    active: Tensor

    def __len__(self) -> int:
        return self.batch.shape[0]

    @staticmethod
    def cat(first: Writers, second: Writers) -> Writers:
        """``first``'s rows, then ``second``'s (which overwrite ``first``'s on shared slots)."""
        return Writers(
            *(torch.cat([a, b]) for a, b in zip(first._fields(), second._fields(), strict=True))
        )

    def _fields(self) -> tuple[Tensor, ...]:
        return (self.batch, self.anchor, self.row, self.col, self.boxes, self.classes, self.active)


@dataclass(frozen=True)
class SlotAssignment:
    """Which writer owns which slot.

    ``winner: bool[R]``: the row is active and the last active row on its slot (its box and
    objectness targets are the ones Darknet keeps). ``owner: int64[R]``: the winning row of each
    row's slot (only meaningful for active rows). ``positive: bool[B, A, H, W]``: written slots.
    """

    winner: Tensor
    owner: Tensor
    positive: Tensor


def resolve_slots(writers: Writers, shape: tuple[int, int, int, int]) -> SlotAssignment:
    """Last-write-wins over the slots of a ``[B, A, H, W]`` head (deterministic, no host sync)."""
    batch, anchors, height, width = shape
    slots = batch * anchors * height * width
    slot = ((writers.batch * anchors + writers.anchor) * height + writers.row) * width + writers.col
    slot = torch.where(writers.active, slot, slots)  # inactive rows share a spare slot
    order = torch.arange(len(writers), device=slot.device)
    last = torch.full((slots + 1,), -1, dtype=torch.int64, device=slot.device)
    last = last.scatter_reduce(0, slot, order, reduce="amax")
    owner = last[slot]
    winner = writers.active & (owner == order)
    return SlotAssignment(winner, owner, (last[:slots] >= 0).view(shape))


def class_union(
    writers: Writers,
    assignment: SlotAssignment,
    num_classes: int,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Multi-hot class targets ``float[R, C]``: at each winning row, every class written on its slot.

    Darknet's logistic class delta: the first truth on a slot sets all classes (one-hot), a later
    one sets only its own class to 1, so the slot ends with the union. Rows that do not win hold
    unspecified values (weight them by ``assignment.winner``).
    """
    target = torch.zeros(len(writers), num_classes, dtype=dtype, device=writers.classes.device)
    target[assignment.owner, writers.classes] = 1.0  # every write is 1: order does not matter
    return target
