"""Evaluate a model on labelled records: letterbox -> model -> postprocess -> evaluator.

The same path serves ``darkyolo val`` and the trainer's per-epoch validation. Boxes are mapped
back to each picture's own pixels before scoring, so the numbers do not depend on the input size
used (beyond what the network sees).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from darkyolo.data.dataset import LetterboxDataset, collate_letterbox
from darkyolo.data.letterbox import letterbox_params
from darkyolo.data.records import ImageRecord
from darkyolo.evaluation.evaluator import DetectionEvaluator, EvalResult
from darkyolo.evaluation.options import ValOptions
from darkyolo.postprocess import NmsMethod, postprocess, scale_to_original

#: what :func:`evaluate` runs with when given no settings
DEFAULT_SETTINGS = ValOptions()


def evaluate(
    model: nn.Module,
    records: Sequence[ImageRecord],
    class_names: Sequence[str],
    settings: ValOptions = DEFAULT_SETTINGS,
    device: torch.device | str = "cpu",
    progress: bool = False,
    amp_dtype: torch.dtype | None = None,
    skip_unreadable: bool = False,
) -> EvalResult:
    """Run ``model`` (a :class:`~darkyolo.models.darknet.Darknet`; put in eval mode here) over
    ``records`` and score it with :class:`DetectionEvaluator`.

    ``skip_unreadable``: a picture that can no longer be read (changed since it was scanned) is
    left out of the scores and named in the result's ``notes``, instead of a :class:`DataError`.
    ``model`` is restored to its previous train/eval mode afterwards.
    """
    device = torch.device(device)
    evaluator = DetectionEvaluator(
        class_names, max_dets=settings.max_det, voc_metric=settings.voc_metric
    )
    dataset = LetterboxDataset(records, settings.img_size, skip_unreadable)
    unreadable: list[str] = []
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=False,
        num_workers=settings.workers,
        collate_fn=collate_letterbox,
    )
    iterator = loader
    if progress:
        from tqdm import tqdm

        iterator = tqdm(loader, desc="val", unit="batch", leave=False)
    nms = NmsMethod.of(model)
    was_training = model.training
    model.eval()
    input_hw = (settings.img_size, settings.img_size)
    memory_format = _memory_format(model)
    try:
        with torch.inference_mode():
            for images, indices in iterator:
                images = images.to(device, non_blocking=True).contiguous(
                    memory_format=memory_format
                )
                with torch.autocast(
                    device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ):
                    rows = model(images)
                detections = postprocess(
                    rows.float(),
                    input_hw,
                    conf_thresh=settings.conf,
                    iou_thresh=settings.iou,
                    max_det=settings.max_det,
                    multi_label=settings.multi_label,
                    nms=nms,
                )
                boxes = [
                    letterbox_params((records[i].height, records[i].width), input_hw)
                    for i in (i if i >= 0 else -1 - i for i in indices)
                ]
                for index, found in zip(indices, scale_to_original(detections, boxes)):
                    if index < 0:  # the picture could not be read: left out, named below
                        unreadable.append(str(records[-1 - index].image))
                        continue
                    record = records[index]
                    found = found.to("cpu")
                    evaluator.process(
                        index,
                        record.boxes,
                        record.labels,
                        found.boxes,
                        found.scores,
                        found.labels,
                        record.width,
                        record.height,
                        gt_iscrowd=record.crowd,
                        gt_area=record.area,
                    )
    finally:
        model.train(was_training)
    result = evaluator.compute()
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (
            f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        )
        result.notes.append(f"{len(unreadable)} pictures could not be read and are not scored: {shown}")  # fmt: skip
    return result


@torch.no_grad()
def recalibrate_batch_norm(
    model: nn.Module,
    batches: Iterable[Tensor],
    device: torch.device | str = "cpu",
    skip: Sequence[nn.Module] = (),
) -> int:
    """Recompute every batch norm's running statistics from ``batches`` (uint8 ``[B, 3, S, S]``).

    The statistics become the plain average over the batches of the per-batch mean and variance
    ("precise BN"), for the weights as they are now. Running averages with a small momentum trail
    weights that change quickly (short runs, high learning rates) and an EMA of weights is not
    matched by an EMA of statistics; either can ruin eval-mode outputs. Modules in ``skip`` (frozen
    layers) keep theirs. Returns the number of images used; ``model``'s mode is restored.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in skip
    ]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    modes = {m: m.training for m in model.modules()}
    memory_format = _memory_format(model)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.eval()
    for m in norms:
        m.train()
    used = 0
    try:
        for images in batches:
            x = (
                images.to(device)
                .to(torch.float32)
                .div_(255)
                .contiguous(memory_format=memory_format)
            )
            model(x)
            used += x.shape[0]
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m, mode in modes.items():
            m.train(mode)
    return used


def _memory_format(model: nn.Module) -> torch.memory_format:
    for param in model.parameters():
        if param.dim() == 4:
            return (
                torch.channels_last
                if param.is_contiguous(memory_format=torch.channels_last)
                and not param.is_contiguous()
                else torch.contiguous_format
            )
    return torch.contiguous_format
