"""How a model is run and scored on labelled pictures: :class:`ValOptions`, torch-free so that the
command line can show its defaults without loading PyTorch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValOptions:
    """How predictions are made and scored.

    ``conf`` 0.001 keeps the low-score tail that AP integrates over; ``iou`` 0.6 is the NMS IoU
    (Darknet's ``map`` uses 0.45); ``multi_label`` keeps every class above ``conf`` per box, as
    Darknet does; ``voc_metric`` adds VOC AP (``voc07`` 11-point or ``voc10`` all-point).
    """

    img_size: int = 416
    batch_size: int = 8
    conf: float = 0.001
    iou: float = 0.6
    max_det: int = 300
    multi_label: bool = True
    voc_metric: str | None = None
    workers: int = 0
