"""Torch datasets over :class:`~darkyolo.data.records.ImageRecord` lists, and their collate.

* :class:`DetectionDataset` (training): decode -> augment (or letterbox) -> ``uint8 [3, S, S]``
  and targets ``float32 [n, 5]`` ``(class, cx, cy, w, h)`` normalised to the input. An item key
  is an index, or ``(index, side, epoch)`` from :class:`~darkyolo.data.multiscale.MultiScaleBatchSampler`.
  The augmentation's random numbers come from ``(seed, epoch, index)`` alone, so a sample is the
  same whatever the worker count, rank or resume point.
* :class:`LetterboxDataset` (evaluation): Darknet's letterbox, ``float32 [3, S, S]`` in 0..1.
* :func:`collate_detection`: ``uint8 [B, 3, S, S]`` and targets ``float32 [T, 6]``
  ``(image index in batch, class, cx, cy, w, h)``.

A file that cannot be decoded raises :class:`~darkyolo.errors.DataError` naming it (never a
``None`` sample); :func:`load_split` leaves unreadable images out *before* training and reports
them with a count.

With ``cache=True`` every picture is decoded once, shrunk so that it is no larger than needed for
the largest input side (``cache_side``), and kept in RAM as ``uint8``; worker processes started by
fork share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from darkyolo.data.description import DatasetSpec
from darkyolo.data.images import read_image
from darkyolo.data.layouts import load_dataset
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.data.scan import ScanReport, cache_for, read_scanned
from darkyolo.data.transforms import (
    AugmentOptions,
    augment,
    letterbox_eval,
    letterbox_uint8,
    mosaic,
)
from darkyolo.errors import DataError

Key = int | tuple[int, int, int]


@dataclass
class SplitReport:
    """What :func:`load_split` kept and left out."""

    split: str
    images: int = 0
    boxes: int = 0
    problems: list[Problem] = field(default_factory=list)
    scan: ScanReport | None = None

    @property
    def skipped_images(self) -> list[Problem]:
        return [p for p in self.problems if p.kind in ("missing-image", "bad-image")]

    def lines(self, limit: int = 5) -> list[str]:
        lines = [f"{self.split}: {self.images} images, {self.boxes} boxes"]
        if self.scan is not None:
            lines.append(f"  {self.scan.summary()}")
        errors = [p for p in self.problems if p.severity == "error"]
        if errors:
            lines.append(f"  left out: {len(errors)} problems (bad images or label lines)")
            lines += [f"    {p}" for p in errors[:limit]]
            if len(errors) > limit:
                lines.append(f"    ... and {len(errors) - limit} more")
        warnings = [p for p in self.problems if p.severity != "error"]
        if warnings:
            lines.append(f"  warnings: {len(warnings)} (e.g. {warnings[0]})")
        return lines


def load_split(
    spec: DatasetSpec | str | Path,
    split: str,
    strict: bool = False,
    *,
    bad_images: str = "exclude",
    scan: bool = True,
) -> tuple[list[ImageRecord], SplitReport]:
    """Records of a split of a ``.data`` dataset, bad images and label lines counted and left out.

    Every picture is first checked (:func:`darkyolo.data.scan.read_scanned`, remembered per file):
    truncated ones are repaired, undecodable ones excluded, or with ``bad_images="stop"`` the load
    stops naming them. With ``strict`` the first label problem raises :class:`DataError`.
    """
    if not isinstance(spec, DatasetSpec):
        spec = load_dataset(spec)
    report = SplitReport(split)
    if scan:
        records, report.scan = read_scanned(
            spec.images(split),
            spec.num_classes,
            None if strict else report.problems,
            policy=bad_images,
            cache=cache_for(spec.path),
            what=f"{spec.path.name} {split}",
            voc_names=spec.voc_names,
        )
    else:
        records = spec.read(split, None if strict else report.problems)
    report.images = len(records)
    report.boxes = sum(len(r) for r in records)
    return records, report


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, index])


def _to_chw(image: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


#: the share of the free memory a training cache may take
CACHE_SHARE = 0.25


def cache_bytes(records: Sequence[ImageRecord], side: int) -> int:
    """The bytes of ``records``' pictures decoded and shrunk to at most ``side`` (what
    ``cache=True`` holds), from their sizes alone."""
    total = 0
    for record in records:
        ratio = min(1.0, side / max(record.width, record.height, 1))
        total += max(1, round(record.width * ratio)) * max(1, round(record.height * ratio)) * 3
    return total


def free_memory() -> int | None:
    """The memory available to new allocations (Linux' ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cache_fits(records: Sequence[ImageRecord], side: int, processes: int = 1) -> bool:
    """Whether ``processes`` caches of ``records`` at ``side`` fit in :data:`CACHE_SHARE` of the
    free memory (unknown free memory: no)."""
    free = free_memory()
    return free is not None and processes * cache_bytes(records, side) <= CACHE_SHARE * free


class _ImageSource:
    """Decoded pictures, optionally cached in RAM (shrunk to ``cache_side``)."""

    def __init__(
        self, records: Sequence[ImageRecord], cache: bool, cache_side: int | None, threads: int = 4
    ) -> None:
        self.records = list(records)
        self.cache: list[np.ndarray] | None = None
        self.cache_side = cache_side
        if cache:
            with ThreadPoolExecutor(max(1, threads)) as pool:
                self.cache = list(pool.map(self._shrunk, range(len(self.records))))

    def _shrunk(self, index: int) -> np.ndarray:
        image = self._decode(index)
        side = self.cache_side
        if side is not None and max(image.shape[:2]) > side:
            ratio = side / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image

    def _decode(self, index: int) -> np.ndarray:
        record = self.records[index]
        image = read_image(record.image)
        if image.shape[0] != record.height or image.shape[1] != record.width:
            raise DataError(
                f"decoded size {image.shape[1]}x{image.shape[0]} differs from the record's "
                f"{record.width}x{record.height} (EXIF rotation?)",
                str(record.image),
            )
        return image

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Picture and its record's boxes in that picture's pixels."""
        record = self.records[index]
        image = self.cache[index] if self.cache is not None else self._decode(index)
        boxes = record.boxes
        if image.shape[0] != record.height or image.shape[1] != record.width:
            scale = np.array(
                [image.shape[1] / record.width, image.shape[0] / record.height] * 2,
                dtype=np.float32,
            )
            boxes = boxes * scale
        return image, boxes

    @property
    def cached_bytes(self) -> int:
        return sum(a.nbytes for a in self.cache) if self.cache is not None else 0


class DetectionDataset(Dataset):
    """Training samples from records.

    Args:
        records: the images and their boxes.
        img_size: input side used when a key carries no size.
        augment: an :class:`AugmentOptions`, or ``None`` for a plain letterbox.
        seed: base of every sample's random numbers.
        cache: decode every picture once and keep it in RAM (``uint8``).
        cache_side: longest side kept in the cache (default: the picture's own size).
        num_classes: if given, a label outside ``0..num_classes-1`` raises :class:`DataError`.
        mosaic_epochs: epochs (counted from 0) before this one may draw mosaics with probability
            ``augment.mosaic``; later epochs use the plain augmentation (``None``: every epoch).
        skip_unreadable: a picture that can no longer be read (changed after the scan) gives a
            grey picture without boxes and the index ``-1 - index``, instead of a DataError.

    ``dataset[key]`` -> ``(image uint8 [3, S, S], targets float32 [n, 5] (class, cx, cy, w, h)
    normalised to the input, index)``.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        img_size: int,
        augment: AugmentOptions | None = None,
        seed: int = 0,
        cache: bool = False,
        cache_side: int | None = None,
        num_classes: int | None = None,
        mosaic_epochs: int | None = None,
        skip_unreadable: bool = False,
    ) -> None:
        self.records = list(records)
        self.skip_unreadable = skip_unreadable
        if not self.records:
            raise DataError("the dataset has no images")
        if num_classes is not None:
            for record in self.records:
                if len(record.labels) and (
                    record.labels.min() < 0 or record.labels.max() >= num_classes
                ):
                    raise DataError(
                        f"class {int(record.labels.max())} outside 0..{num_classes - 1}",
                        record.source,
                    )
        self.img_size = img_size
        self.augment = augment
        self.seed = seed
        self.mosaic_epochs = mosaic_epochs
        self.source = _ImageSource(self.records, cache, cache_side)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: Key) -> tuple[Tensor, Tensor, int]:
        if isinstance(key, tuple):
            index, side, epoch = key
        else:
            index, side, epoch = int(key), self.img_size, 0
        try:
            image, boxes = self.source.get(index)
        except DataError:
            if not self.skip_unreadable:
                raise
            # the picture went bad after the scan (deleted, rewritten): a grey picture without
            # boxes stands in, and the index comes back negative so the trainer names and counts it
            pixels = np.full((3, side, side), 128, dtype=np.uint8)
            return torch.from_numpy(pixels), torch.zeros((0, 5)), -1 - index
        labels = self.records[index].labels
        out_hw = (side, side)
        if self.augment is None:
            pixels, boxes, labels = letterbox_uint8(image, boxes, labels, out_hw)
        else:
            rng = _rng(self.seed, epoch, index)
            if self._mosaic_now(epoch) and rng.random() < self.augment.mosaic:
                others = rng.integers(0, len(self.records), size=3)
                pictures = [(image, boxes, labels)]
                for other in others.tolist():
                    try:
                        picture, picture_boxes = self.source.get(other)
                    except DataError:
                        if not self.skip_unreadable:
                            raise
                        picture, picture_boxes, other = image, boxes, index  # named when drawn
                    pictures.append((picture, picture_boxes, self.records[other].labels))
                pixels, boxes, labels = mosaic(pictures, out_hw, self.augment, rng)
            else:
                pixels, boxes, labels = augment(image, boxes, labels, out_hw, self.augment, rng)
        targets = np.empty((len(labels), 5), dtype=np.float32)
        targets[:, 0] = labels
        targets[:, 1] = (boxes[:, 0] + boxes[:, 2]) / (2 * side)
        targets[:, 2] = (boxes[:, 1] + boxes[:, 3]) / (2 * side)
        targets[:, 3] = (boxes[:, 2] - boxes[:, 0]) / side
        targets[:, 4] = (boxes[:, 3] - boxes[:, 1]) / side
        return _to_chw(pixels), torch.from_numpy(targets), index

    def _mosaic_now(self, epoch: int) -> bool:
        if self.augment is None or self.augment.mosaic <= 0:
            return False
        return self.mosaic_epochs is None or epoch < self.mosaic_epochs


def collate_detection(
    batch: Sequence[tuple[Tensor, Tensor, int]],
) -> tuple[Tensor, Tensor, list[int]]:
    """Samples -> ``(images uint8 [B, 3, S, S], targets float32 [T, 6], record indices [B])``.

    Target rows are ``(image index in the batch, class, cx, cy, w, h)``, normalised to the input.
    """
    images = torch.stack([item[0] for item in batch])
    parts = []
    for position, (_, targets, _) in enumerate(batch):
        column = torch.full((targets.shape[0], 1), float(position))
        parts.append(torch.cat([column, targets], dim=1))
    targets = torch.cat(parts) if parts else torch.zeros((0, 6))
    return images, targets, [item[2] for item in batch]


class LetterboxDataset(Dataset):
    """Evaluation inputs: Darknet's letterbox of each record's picture.

    ``dataset[i]`` -> ``(image float32 [3, S, S] in 0..1, i)``; with ``skip_unreadable`` a
    picture that cannot be read gives a grey image and ``-1 - i``. The letterbox that maps boxes back
    is :func:`darkyolo.data.letterbox.letterbox_params` of the record's size.
    """

    def __init__(
        self, records: Sequence[ImageRecord], img_size: int, skip_unreadable: bool = False
    ) -> None:
        self.records = list(records)
        self.img_size = img_size
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        record = self.records[index]
        try:
            image = read_image(record.image)
        except DataError:
            if not self.skip_unreadable:
                raise
            grey = np.full((3, self.img_size, self.img_size), 0.5, dtype=np.float32)
            return torch.from_numpy(grey), -1 - index
        if image.shape[0] != record.height or image.shape[1] != record.width:
            raise DataError(
                f"decoded size {image.shape[1]}x{image.shape[0]} differs from the record's "
                f"{record.width}x{record.height}",
                str(record.image),
            )
        pixels, _ = letterbox_eval(image, (self.img_size, self.img_size))
        return _to_chw(pixels), index


def collate_letterbox(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, list[int]]:
    """``(float32 [B, 3, S, S], record indices [B])``."""
    return torch.stack([item[0] for item in batch]), [item[1] for item in batch]
