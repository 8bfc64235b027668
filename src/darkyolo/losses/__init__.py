"""Detection losses with Darknet's semantics, one per head, driven by the cfg's ``[region]``/``[yolo]``.

``loss_fn = build_loss(model)``, then per micro-batch::

    total, parts = loss_fn(model.forward_raw(images), targets, input_hw, seen)

* ``targets``: ``float[T, 6]`` rows ``(image index in the batch, class, cx, cy, w, h)``, the box
  normalised to 0..1 of the network input (after letterbox and augmentation). Best passed on the
  CPU: they are checked and padded there, then copied to the maps' device (no device sync).
* ``input_hw``: the network input ``(height, width)`` of this batch (multi-scale changes it).
* ``seen``: images trained on before this batch (the ``[region]`` prior term stops at 12,800).
* ``total``: scalar, the **sum** over every entry of the micro-batch (Darknet's layers do not divide
  by the batch; the trainer divides by the images per optimizer update, ``docs/training.md`` §3).
* ``parts``: detached scalars ``box, obj, noobj, cls`` (+ ``prior`` with a ``[region]`` head), summed
  over heads; ``total`` is their sum.

The losses always compute in float32 (float16/bfloat16 maps are cast; autocast is switched off).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darkyolo.losses.aligned import AlignedLoss
from darkyolo.losses.assign import prepare_truths
from darkyolo.losses.region import RegionLoss
from darkyolo.losses.scaled import ScaledLoss
from darkyolo.losses.yolo import YoloLoss
from darkyolo.models.heads import DetectionHead, RegionHead, YoloHead

__all__ = [
    "AlignedLoss",
    "DetectionLoss",
    "RegionLoss",
    "ScaledLoss",
    "YoloLoss",
    "build_loss",
]

_MODE_LOSSES = {"scaled": ScaledLoss, "aligned": AlignedLoss}


class DetectionLoss:
    """One loss per head, in cfg order; ``__call__`` returns ``(total, parts)`` (see module doc).

    ``dropped_small`` / ``dropped_over_max`` count, since construction, the target rows no head saw
    because ``w`` or ``h`` < 0.001 or the image had more than the heads' ``max`` rows.
    """

    def __init__(self, heads: Sequence[DetectionHead], mode: str = "darknet") -> None:
        if not heads:
            raise ValueError("a detection loss needs at least one head")
        if mode != "darknet" and mode not in _MODE_LOSSES:
            modes = "|".join(("darknet", *_MODE_LOSSES))
            raise ValueError(f"unknown loss mode {mode!r}, expected {modes}")
        self.mode = mode
        self.losses: list[RegionLoss | YoloLoss] = []
        for head in heads:
            if isinstance(head, RegionHead):
                self.losses.append(RegionLoss(head))
            elif isinstance(head, YoloHead):
                self.losses.append(YoloLoss(head))
            else:
                raise TypeError(f"no loss for head type {type(head).__name__}")
        classes = {head.num_classes for head in heads}
        if len(classes) != 1:
            raise ValueError(f"heads disagree on the number of classes: {sorted(classes)}")
        self.num_classes = classes.pop()
        self.max_boxes = max(loss.spec.max_boxes for loss in self.losses)
        names: list[str] = []
        for loss in self.losses:
            names += [name for name in loss.part_names if name not in names]
        self.part_names: tuple[str, ...] = tuple(names)
        self.joint: ScaledLoss | AlignedLoss | None = None  # one loss over all heads
        if mode in _MODE_LOSSES:
            self.joint = _MODE_LOSSES[mode]([loss.head for loss in self.losses])  # type: ignore[arg-type]
            self.part_names = self.joint.part_names
        self.dropped_small = 0
        self.dropped_over_max = 0

    def __call__(
        self,
        raw_maps: Sequence[Tensor],
        targets: Tensor,
        input_hw: tuple[int, int],
        seen: int,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if len(raw_maps) != len(self.losses):
            raise ValueError(f"got {len(raw_maps)} raw maps for {len(self.losses)} heads")
        device = raw_maps[0].device
        truths = prepare_truths(targets, raw_maps[0].shape[0], self.num_classes, self.max_boxes)
        self.dropped_small += truths.dropped_small
        self.dropped_over_max += truths.dropped_over_max
        truths = truths.to(device)
        parts: dict[str, Tensor] = {}
        with torch.autocast(device.type, enabled=False):
            if self.joint is not None:
                maps = [r if r.dtype == torch.float64 else r.float() for r in raw_maps]
                parts = self.joint(maps, truths, input_hw, seen)
            for loss, raw in zip(self.losses if self.joint is None else [], raw_maps):
                for name, value in loss(raw, truths, input_hw, seen).items():
                    parts[name] = parts[name] + value if name in parts else value
            total = torch.stack([parts[name] for name in self.part_names]).sum()
        return total, {name: parts[name].detach() for name in self.part_names}


def build_loss(model: nn.Module, mode: str = "darknet") -> DetectionLoss:
    """The loss for a :class:`~darkyolo.models.darknet.Darknet` (or a DDP/compiled wrapper of one)."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    return DetectionLoss(inner.heads, mode)
