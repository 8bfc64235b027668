"""Writing detection results: run folders, annotated pictures and videos, YOLO txt, COCO results JSON.

Formats (boxes are xyxy pixels inside the code; converted here, at the edge):

* YOLO txt, one line per box: ``class cx cy w h confidence``, centre and size normalised by the
  picture's width and height;
* COCO results JSON: a list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` with
  ``bbox`` in pixels; ``image_id`` is the file stem as an int when it is all digits (COCO's own file
  names), else the stem; ``category_id`` is COCO's id for a model with the 80 COCO classes, else
  ``label + 1``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from darkyolo.data.formats.coco import coco_category_ids, results_entries
from darkyolo.data.images import video_info
from darkyolo.errors import DataError
from darkyolo.inference.predictor import Prediction
from darkyolo.viz.draw import draw_detections

_WRITABLE = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def new_run_dir(
    root: str | Path = "runs/detect", name: str = "exp", exist_ok: bool = False, create: bool = True
) -> Path:
    """``root/name``, or the first free ``root/name2``, ``root/name3``... (created unless
    ``create`` is False: then whoever writes first makes it)."""
    root = Path(root)
    path = root / name
    if not exist_ok:
        number = 2
        while path.exists():
            path = root / f"{name}{number}"
            number += 1
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def free_stem(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``... when an earlier output took it; added to ``taken``."""
    candidate, number = stem, 2
    while candidate in taken:
        candidate, number = f"{stem}_{number}", number + 1
    taken.add(candidate)
    return candidate


def yolo_lines(prediction: Prediction) -> list[str]:
    """``class cx cy w h conf`` lines, normalised to the picture's size."""
    h, w = prediction.image_hw
    lines = []
    for (x1, y1, x2, y2), score, label in zip(
        prediction.boxes, prediction.scores, prediction.labels
    ):
        cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
        bw, bh = (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{int(label)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f} {score:.5f}")
    return lines


def coco_image_id(source: str, frame: int | None = None) -> int | str:
    """The results-JSON ``image_id`` for a picture: the stem as an int if all digits, else the stem
    (``stem_frame`` for a video frame)."""
    stem = Path(source).stem
    if frame is not None:
        return f"{stem}_{frame}"
    return int(stem) if re.fullmatch(r"\d+", stem) else stem


def coco_results(
    prediction: Prediction, category_ids: Sequence[int], image_id: int | str | None = None
) -> list[dict]:
    """The COCO results-format records of one picture (boxes to 1e-3, scores to 1e-5);
    ``image_id`` defaults to :func:`coco_image_id`."""
    if image_id is None:
        image_id = coco_image_id(prediction.source, prediction.frame)
    return results_entries(
        image_id, prediction.boxes, prediction.scores, prediction.labels, category_ids
    )


def coco_image_ids(json_path: str | Path) -> dict[str, int]:
    """File name -> COCO image id, from a COCO annotation JSON's ``images`` list."""
    from darkyolo.data.formats.coco import read_coco

    coco = read_coco(json_path)
    ids: dict[str, int] = {}
    for record in coco.records:
        name = record.image.name
        if name in ids and ids[name] != record.image_id:
            raise DataError(f"two images are named {name} (ids {ids[name]}, {record.image_id})", str(json_path))  # fmt: skip
        ids[name] = int(record.image_id)  # type: ignore[arg-type]
    return ids


class ResultWriter:
    """Writes what a detect run produces into ``run_dir``.

    * pictures with boxes drawn (same file name; a repeated name gets ``_2``, ``_3``...), videos as
      annotated ``.mp4`` files (``save_images``);
    * ``labels/<stem>.txt`` (``<stem>_<frame>.txt`` for video frames) in YOLO format with a
      confidence column (``save_txt``); a picture with no detections gets an empty file;
    * ``predictions.json`` in COCO results format (``save_json``), written by :meth:`close`.
      ``image_ids`` maps a picture's file name to its COCO id (from the dataset's JSON, see
      :func:`coco_image_ids`); pictures it does not name keep :func:`coco_image_id` and are
      counted in ``unlisted``.
    """

    def __init__(
        self,
        run_dir: str | Path,
        names: Sequence[str],
        *,
        save_images: bool = True,
        save_txt: bool = False,
        save_json: bool = False,
        line_width: int | None = None,
        image_ids: dict[str, int] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.image_ids = image_ids
        self.unlisted = 0
        self.names = list(names)
        self.save_images, self.save_txt, self.save_json = save_images, save_txt, save_json
        self.line_width = line_width
        self.category_ids = coco_category_ids(self.names)
        self.records: list[dict] = []
        self._used: dict[str, str] = {}  # source -> output stem
        self._taken: set[str] = set()
        self._videos: dict[str, cv2.VideoWriter] = {}
        self.written: list[Path] = []

    def _folder(self, sub: str = "") -> Path:
        """``run_dir`` (or a folder inside it), made when the first file goes there."""
        folder = self.run_dir / sub if sub else self.run_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _stem(self, source: str) -> str:
        if source not in self._used:
            self._used[source] = free_stem(Path(source).stem or "image", self._taken)
        return self._used[source]

    def write(self, prediction: Prediction) -> None:
        """Write one picture's (or video frame's) results."""
        stem = self._stem(prediction.source)
        if self.save_images:
            if prediction.image is None:
                raise ValueError("the prediction carries no image to draw on (keep_images=True)")
            drawn = draw_detections(
                prediction.image,
                prediction.boxes,
                prediction.labels,
                prediction.scores,
                self.names,
                self.line_width,
            )
            if prediction.frame is None:
                self._write_picture(prediction.source, stem, drawn)
            else:
                self._write_frame(prediction.source, stem, drawn)
        if self.save_txt:
            name = stem if prediction.frame is None else f"{stem}_{prediction.frame}"
            lines = yolo_lines(prediction)
            path = self._folder("labels") / f"{name}.txt"
            path.write_text("".join(line + "\n" for line in lines))
        if self.save_json:
            image_id = None
            if self.image_ids is not None and prediction.frame is None:
                image_id = self.image_ids.get(Path(prediction.source).name)
                self.unlisted += image_id is None
            self.records.extend(coco_results(prediction, self.category_ids, image_id))

    def _write_picture(self, source: str, stem: str, rgb: np.ndarray) -> None:
        suffix = Path(source).suffix.lower()
        suffix = suffix if suffix in _WRITABLE else ".png"
        path = self._folder() / f"{stem}{suffix}"
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise DataError("OpenCV could not write the annotated picture", str(path))
        self.written.append(path)

    def _write_frame(self, source: str, stem: str, rgb: np.ndarray) -> None:
        writer = self._videos.get(source)
        if writer is None:
            fps = video_info(source).fps or 25.0
            path = self._folder() / f"{stem}.mp4"
            h, w = rgb.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise DataError("OpenCV could not open a video writer", str(path))
            self._videos[source] = writer
            self.written.append(path)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> Path | None:
        """Finish videos and write the JSON; returns the JSON's path when one was asked for and
        a picture was written (a run that read nothing leaves no folder behind)."""
        for writer in self._videos.values():
            writer.release()
        self._videos.clear()
        if not self.save_json or not self._used:
            return None
        path = self._folder() / "predictions.json"
        path.write_text(json.dumps(self.records))
        return path
