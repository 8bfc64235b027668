"""Every edit of a cfg's text, at the raw-section level (:mod:`darkyolo.darknet.sections`): the
class count (:func:`adapt_classes`), the anchors (:func:`with_anchors`), a ``[yolo]`` key's
default (:func:`with_yolo_default`, ``iou_thresh``) and the input size (:func:`with_input_size`).

An edit that changes nothing returns the text as it was (comments kept); one that changes
something re-renders the cfg without comments. Torch-free.
"""

from __future__ import annotations

import numpy as np

from darkyolo.darknet.sections import RawSection, read_sections, render_cfg
from darkyolo.errors import ConfigError, DataError


def set_head_classes(
    sections: list[RawSection], position: int, num_classes: int, file: str
) -> None:
    """Give the ``[yolo]``/``[region]`` section at ``position`` ``num_classes`` classes, and the
    ``[convolutional]`` right before it the matching ``filters``: one box of ``5 + classes``
    values per anchor the head predicts (``len(mask)`` for ``[yolo]``, ``num`` for ``[region]``).
    The one raw-section edit behind class adaptation and ``anchors --write-cfg``."""
    head = sections[position]
    options = head.options
    num = int(float(options.get("num", "1")))
    anchors = (
        len(options["mask"].split(",")) if head.kind == "yolo" and options.get("mask") else num
    )
    previous = sections[position - 1] if position > 0 else None
    if previous is None or previous.kind not in ("convolutional", "conv"):
        raise ConfigError(
            f"[{head.kind}] must follow a [convolutional] to set its filters for the class count",
            file,
            head.line,
        )
    options["classes"] = str(num_classes)
    previous.options["filters"] = str(anchors * (5 + num_classes))


def with_yolo_default(text: str, key: str, value: str, file: str = "<cfg>") -> tuple[str, int]:
    """``text`` with ``key=value`` added to every ``[yolo]`` section that does not set ``key``
    -> ``(text, sections changed)``; with none changed, ``text`` itself (comments kept)."""
    sections = read_sections(text, file)
    missing = [s for s in sections if s.kind == "yolo" and key not in s.options]
    for section in missing:
        section.options[key] = value
    return (render_cfg(sections), len(missing)) if missing else (text, 0)


def set_classifier_classes(sections: list[RawSection], num_classes: int, file: str) -> bool:
    """Give a classifier ``num_classes`` outputs: the last ``[convolutional]`` (``filters``) or
    ``[connected]`` (``output``) before its last ``[softmax]``. Returns whether anything changed;
    a cfg without ``[softmax]`` is left alone."""
    softmax = [i for i, s in enumerate(sections) if s.kind in ("softmax", "soft")]
    if not softmax:
        return False
    for section in reversed(sections[: softmax[-1]]):
        key = {"convolutional": "filters", "conv": "filters", "connected": "output", "conn": "output"}.get(section.kind)  # fmt: skip
        if key is None:
            continue
        if int(float(section.options.get(key, "1"))) == num_classes:
            return False
        section.options[key] = str(num_classes)
        return True
    raise ConfigError(
        "[softmax] has no [convolutional] or [connected] before it to give the classes",
        file,
        sections[softmax[-1]].line,
    )


HEAD_KINDS = ("yolo", "region")


def adapt_classes(text: str, num_classes: int, file: str = "<cfg>") -> tuple[str, bool]:
    """Cfg text with every head set to ``num_classes`` classes -> ``(text, changed)``.

    The ``[convolutional]`` right before each head gets ``filters = anchors x (5 + classes)``
    (``len(mask)`` anchors for ``[yolo]``, ``num`` for ``[region]``); a classifier's last layer
    with weights before its ``[softmax]`` gets ``num_classes`` outputs. Unchanged text is returned
    as is (comments kept); a changed cfg is re-rendered without comments.
    """
    sections = read_sections(text, file)
    if not any(section.kind in HEAD_KINDS for section in sections):
        if set_classifier_classes(sections, num_classes, file):
            return render_cfg(sections), True
        return text, False
    changed = False
    for position, section in enumerate(sections):
        if section.kind not in HEAD_KINDS:
            continue
        if int(float(section.options.get("classes", "20"))) == num_classes:
            continue
        set_head_classes(sections, position, num_classes, file)
        changed = True
    if not changed:
        return text, False
    return render_cfg(sections), True


def round_anchors(anchors: np.ndarray, units: str) -> np.ndarray:
    """Anchors as a cfg would hold them: 4 decimals in grid cells, 1 decimal in pixels."""
    return np.round(np.asarray(anchors, dtype=np.float64), 4 if units == "grid" else 1)


def anchors_line(anchors: np.ndarray, units: str) -> str:
    """``anchors=w,h, w,h, ...`` for a cfg, with :func:`round_anchors` precision."""
    pairs = [f"{_number(w)},{_number(h)}" for w, h in round_anchors(anchors, units).tolist()]
    return "anchors=" + ", ".join(pairs)


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def anchor_masks(old_masks: list[list[int]], old_num: int, k: int) -> list[list[int]]:
    """New ``mask=`` lists for ``k`` area-sorted anchors over the same heads.

    Same count: the masks stay. Otherwise the anchors are split as evenly as the heads allow,
    the largest going to the head whose old mask held the largest anchors.
    """
    if k == old_num:
        return old_masks
    heads = len(old_masks)
    if k < heads:
        raise DataError(f"k={k} anchors cannot feed {heads} [yolo] heads (need at least {heads})")
    order = sorted(range(heads), key=lambda i: -np.mean(old_masks[i]) if old_masks[i] else 0.0)
    sizes = [k // heads + (1 if rank < k % heads else 0) for rank in range(heads)]
    masks: list[list[int]] = [[] for _ in range(heads)]
    top = k
    for rank, head in enumerate(order):
        masks[head] = list(range(top - sizes[rank], top))
        top -= sizes[rank]
    return masks


def with_anchors(text: str, source: str, anchors: np.ndarray, num_classes: int) -> str:
    """A cfg's text with new anchors and class count.

    In every ``[region]``/``[yolo]`` head: ``anchors``, ``num``, ``classes`` and (``[yolo]``)
    ``mask`` (see :func:`anchor_masks`); in the ``[convolutional]`` just before each head:
    ``filters = len(mask) * (5 + classes)``. ``anchors`` must be in the heads' units, sorted by
    area. Comments of the original are not kept.
    """
    sections = read_sections(text, source)
    heads = [i for i, s in enumerate(sections) if s.kind in ("region", "yolo")]
    if not heads:
        raise ConfigError("the cfg has no [region] or [yolo] head", source)
    k = len(anchors)
    line = anchors_line(anchors, "grid" if sections[heads[0]].kind == "region" else "pixels")
    yolo = [i for i in heads if sections[i].kind == "yolo"]
    new_masks: dict[int, list[int]] = {}
    if yolo:
        old_num = int(float(sections[yolo[0]].options.get("num", "1")))
        old_masks = []
        for i in yolo:
            mask = sections[i].options.get("mask")
            old_masks.append([int(v) for v in mask.split(",")] if mask else list(range(old_num)))
        new_masks = dict(zip(yolo, anchor_masks(old_masks, old_num, k)))
    for i in heads:
        options = sections[i].options
        options["anchors"] = line.removeprefix("anchors=")
        options["num"] = str(k)
        if i in new_masks:
            options["mask"] = ",".join(str(m) for m in new_masks[i])
        set_head_classes(sections, i, num_classes, source)
    return render_cfg(sections)


def with_input_size(text: str, size: int, file: str = "<cfg>") -> str:
    """``text`` with ``[net]`` ``width`` and ``height`` set to ``size`` (the side a run trains
    at), so the cfg alone says the size its weights expect; unchanged when they already are."""
    sections = read_sections(text, file)
    net = sections[0].options if sections else None
    if net is None or (net.get("width"), net.get("height")) == (str(size), str(size)):
        return text
    net["width"] = net["height"] = str(size)
    return render_cfg(sections)
