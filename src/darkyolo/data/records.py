"""The one record type every label format reads into and writes from.

An :class:`ImageRecord` is an image file, its size, and its boxes as ``xyxy`` in the image's own
pixels (continuous coordinates: the image spans ``[0, width] x [0, height]``). Readers convert
from their format at the edge (YOLO ``cx cy w h`` normalised, COCO ``x y w h`` pixels, VOC corners);
nothing downstream needs to know where a record came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float64)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


@dataclass
class ImageRecord:
    """One image and its boxes.

    Attributes:
        image: path of the image file.
        width, height: image size in pixels.
        boxes: ``float64 [N, 4]`` ``x1, y1, x2, y2`` in image pixels.
        labels: ``int64 [N]`` 0-based class index of each box.
        label_file: where the boxes were read from (a ``.txt``, ``.xml`` or ``.json``), for messages.
        image_id: the image's id where the source has one (COCO), else ``None``.
        crowd: ``bool [N]``, COCO ``iscrowd`` regions (kept only when asked for): scoring ignores
            detections matched to them; ``None`` means no box is a crowd region.
        area: ``float64 [N]`` the source's own object areas (COCO: the mask area), used for
            COCO's small/medium/large ranges; ``None`` means the box areas.
    """

    image: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=_empty_boxes)
    labels: np.ndarray = field(default_factory=_empty_labels)
    label_file: Path | None = None
    image_id: int | None = None
    crowd: np.ndarray | None = None
    area: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.image = Path(self.image)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.boxes) != len(self.labels):
            raise ValueError(f"{self.image}: {len(self.boxes)} boxes but {len(self.labels)} labels")
        for name in ("crowd", "area"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=bool if name == "crowd" else np.float64).reshape(-1)
                if len(value) != len(self.labels):
                    raise ValueError(
                        f"{self.image}: {len(value)} {name} flags for {len(self)} boxes"
                    )
                setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def source(self) -> str:
        """The file to name in a message about this record's labels."""
        return str(self.label_file if self.label_file is not None else self.image)

    def normalised_wh(self) -> np.ndarray:
        """``float64 [N, 2]`` box width and height divided by the image width and height."""
        wh = (self.boxes[:, 2:] - self.boxes[:, :2]).astype(np.float64)
        return wh / np.array([self.width, self.height], dtype=np.float64)


@dataclass(frozen=True)
class Problem:
    """One finding about a dataset: what is wrong, where, and whether it is an error or a warning.

    ``kind`` is a short stable code (``unparsable``, ``class-range``, ``not-normalised``,
    ``out-of-range``, ``zero-size``, ``duplicate``, ``missing-image``, ``missing-label``,
    ``orphan-label``, ``empty-image``, ``bad-image``) that reports group by.
    """

    severity: str  # "error" | "warning"
    kind: str
    message: str
    file: str
    line: int | None = None
    #: the splits whose pictures it was found in, where a report spans several (``check``)
    splits: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        found_in = f" ({' and '.join(self.splits)})" if self.splits else ""
        return f"{where}: {self.severity}: {self.message}{found_in}"
