"""Pascal VOC XML: one ``<annotation>`` per image with ``<size>`` and ``<object>/<bndbox>`` corners.

Pixel convention: by default the reader takes ``xmin ymin xmax ymax`` as plain pixel corners in
continuous coordinates (what most labelling tools, and BCCD, write): the box is
``[xmin, xmax] x [ymin, ymax]``. The original VOC tools number pixels from 1 and include both end
pixels; ``one_based=True`` reads that convention as ``[xmin - 1, xmax] x [ymin - 1, ymax]`` (so a
one-pixel box ``xmin == xmax`` has width 1). The writer writes plain corners.

XML goes through ``defusedxml``, which refuses entity expansion (billion laughs) and external
entities.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError


@dataclass
class VocFile:
    """One VOC XML file as written.

    Attributes:
        path: the XML file.
        filename: ``<filename>`` (may be empty).
        width, height: ``<size>``; 0 when absent or zero (then the image header must say).
        names: class name of each object, ``[N]``.
        boxes: ``float64 [N, 4]`` xyxy in pixels under the chosen convention.
        difficult: ``bool [N]`` the ``<difficult>`` flag.
    """

    path: Path
    filename: str
    width: int
    height: int
    names: list[str]
    boxes: np.ndarray
    difficult: np.ndarray


def parse_voc_xml(path: str | Path, one_based: bool = False) -> VocFile:
    """Read one VOC XML file (see the module docstring for the pixel convention)."""
    path = Path(path)
    file = str(path)
    try:
        root = SafeET.parse(path).getroot()
    except DefusedXmlException as error:
        raise DataError(f"refused unsafe XML ({type(error).__name__})", file) from None
    except ET.ParseError as error:
        line = error.position[0] if error.position else None
        raise DataError(f"not well-formed XML: {error}", file, line) from None
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror}", file) from None
    except (LookupError, ValueError) as error:  # encoding='nope', 'utf-32', 'rot13', ...
        reason = " ".join(str(error).split())[:200]
        raise DataError(f"unsupported XML encoding ({reason})", file) from None
    if root.tag != "annotation":
        raise DataError(f"expected an <annotation> root element, got <{root.tag}>", file)
    size = root.find("size")
    width = height = 0
    if size is not None:
        width = int(_number(size, "width", file, default=0))
        height = int(_number(size, "height", file, default=0))
    names, boxes, difficult = [], [], []
    for position, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DataError(f"<object> {position} has no <name>", file)
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DataError(f"<object> {position} ({name}) has no <bndbox>", file)
        corners = [_number(bndbox, key, file) for key in ("xmin", "ymin", "xmax", "ymax")]
        if one_based:
            corners[0] -= 1.0
            corners[1] -= 1.0
        names.append(name)
        boxes.append(corners)
        difficult.append(_number(obj, "difficult", file, default=0) != 0)
    return VocFile(
        path=path,
        filename=(root.findtext("filename") or "").strip(),
        width=width,
        height=height,
        names=names,
        boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        difficult=np.array(difficult, dtype=bool),
    )


def voc_to_record(
    voc: VocFile,
    image: Path,
    class_index: Mapping[str, int],
    skip_difficult: bool = False,
    size: tuple[int, int] | None = None,
) -> ImageRecord:
    """A record from a parsed XML. ``size`` (width, height) is used when the XML has none.

    Raises:
        DataError: naming the XML when an object's class is not in ``class_index`` or no size
            is known.
    """
    width, height = voc.width, voc.height
    if width <= 0 or height <= 0:
        if size is None:
            raise DataError("<size> is missing or zero and no image size was given", str(voc.path))
        width, height = size
    unknown = [n for n in voc.names if n not in class_index]
    if unknown:
        known = ", ".join(class_index)
        raise DataError(f"class {unknown[0]!r} is not one of the names ({known})", str(voc.path))
    keep = ~voc.difficult if skip_difficult else np.ones(len(voc.names), dtype=bool)
    labels = np.array([class_index[n] for n in voc.names], dtype=np.int64)[keep]
    return ImageRecord(image, width, height, voc.boxes[keep], labels, voc.path)


def write_voc_xml(path: str | Path, record: ImageRecord, names: Sequence[str]) -> None:
    """Write a record as VOC XML with plain pixel corners (rounded to 1e-3 pixel)."""
    root = Element("annotation")
    ET.SubElement(root, "folder").text = record.image.parent.name
    ET.SubElement(root, "filename").text = record.image.name
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(record.width)
    ET.SubElement(size, "height").text = str(record.height)
    ET.SubElement(size, "depth").text = "3"
    for box, label in zip(record.boxes.tolist(), record.labels.tolist()):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[label]
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, key).text = f"{value:.3f}".rstrip("0").rstrip(".")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=False)


def _number(parent: Element, key: str, file: str, default: float | None = None) -> float:
    text = parent.findtext(key)
    if text is None or not text.strip():
        if default is not None:
            return default
        raise DataError(f"<{parent.tag}> has no <{key}>", file)
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"<{key}> must be a number, got {text.strip()!r}", file) from None
    if not math.isfinite(value):
        raise DataError(f"<{key}> must be a finite number, got {text.strip()!r}", file)
    return value
