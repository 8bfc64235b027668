"""Classification data: where pictures and their classes come from, and how a picture becomes a
network input (Darknet's classifier augmentation, or its centre crop for evaluation).

Two layouts, told apart by the path given:

* a folder with ``train/<class>/`` and ``val/<class>/`` (the ImageFolder convention); the class
  names are ``train``'s sub-folders, sorted;
* a Darknet ``.data`` file with ``train=``/``valid=`` picture lists and ``labels=`` (or
  ``names=``) class names. As in Darknet, a picture's class is the label that occurs in its path;
  a path naming none or several is left out, counted and named.

Pictures are RGB ``uint8 [H, W, 3]``; a sample is ``uint8 [3, S, S]`` and its class index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from darkyolo.darknet.cfg import NetSpec
from darkyolo.data.description import read_data_options, read_image_list, resolve_data_path
from darkyolo.data.formats.yolo import read_names
from darkyolo.data.images import IMAGE_SUFFIXES, read_image
from darkyolo.data.scan import cache_for, scan_images, stop_if_asked
from darkyolo.data.transforms import hsv_distort, rand_scale
from darkyolo.errors import DataError


@dataclass(frozen=True)
class LabelledImage:
    """One picture and its class index."""

    image: Path
    label: int


@dataclass
class ClassificationData:
    """A classification set: class ``names`` and its ``train``/``val`` pictures; ``notes`` say what
    was left out and why (never silently)."""

    path: Path
    names: list[str]
    train: list[LabelledImage]
    val: list[LabelledImage]
    notes: list[str] = field(default_factory=list)


def load_classification_data(path: str | Path) -> ClassificationData:
    """Read a class-folder tree or a Darknet ``.data`` file (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _from_folders(path)
    if path.is_file():
        return _from_data_file(path)
    raise DataError("no such folder or .data file", str(path))


def _pictures(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _from_folders(root: Path) -> ClassificationData:
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(
            "expected train/<class>/ folders (and val/<class>/), or a Darknet .data file",
            str(root),
        )
    names = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not names:
        raise DataError("train/ holds no class folders", str(train_dir))
    notes = []
    splits: dict[str, list[LabelledImage]] = {}
    for split in ("train", "val"):
        folder = root / split
        items: list[LabelledImage] = []
        if folder.is_dir():
            for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
                if class_dir.name not in names:
                    raise DataError(
                        f"class folder {class_dir.name!r} is not among train/'s classes "
                        f"({', '.join(names)})",
                        str(class_dir),
                    )
                label = names.index(class_dir.name)
                items += [LabelledImage(p, label) for p in _pictures(class_dir)]
            loose = [
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ]
            if loose:
                notes.append(f"{split}/: {len(loose)} pictures outside a class folder left out")
        splits[split] = items
    if not splits["train"]:
        raise DataError("no pictures in the train/<class>/ folders", str(train_dir))
    empty = [n for n in names if not any(i.label == names.index(n) for i in splits["train"])]
    if empty:
        raise DataError(f"class folders without pictures: {', '.join(empty)}", str(train_dir))
    return ClassificationData(root, names, splits["train"], splits["val"], notes)


def _from_data_file(path: Path) -> ClassificationData:
    options, lines = read_data_options(path)
    names_key = "labels" if "labels" in options else "names"
    if names_key not in options:
        raise DataError("needs labels= (or names=): the file of class names", str(path))
    names = read_names(resolve_data_path(path, options[names_key], names_key, lines[names_key]))
    if "classes" in options and options["classes"] != str(len(names)):
        raise DataError(
            f"classes={options['classes']} but {names_key}= names {len(names)}",
            str(path),
            lines["classes"],
        )
    if "train" not in options:
        raise DataError("needs train= (a list of picture paths)", str(path))
    notes: list[str] = []
    splits: dict[str, list[LabelledImage]] = {"train": [], "val": []}
    for split, key in (("train", "train"), ("val", "valid"), ("val", "val")):
        if key in options:
            listing = resolve_data_path(path, options[key], key, lines[key])
            splits[split] = _label_by_substring(listing, names, notes)
    if not splits["train"]:
        raise DataError("no training picture has a class in its path", str(path))
    return ClassificationData(path, names, splits["train"], splits["val"], notes)


def _label_by_substring(list_file: Path, names: list[str], notes: list[str]) -> list[LabelledImage]:
    """Darknet's rule: the class of a path (as the list writes it) is the one label in it."""
    items, unmatched, ambiguous = [], [], []
    for image in read_image_list(list_file):
        written = image.relative_to(list_file.parent) if image.is_relative_to(list_file.parent) else image  # fmt: skip
        found = [i for i, name in enumerate(names) if name in str(written)]
        if len(found) == 1:
            items.append(LabelledImage(image, found[0]))
        else:
            (unmatched if not found else ambiguous).append(str(written))
    for what, paths in (("no label", unmatched), ("several labels", ambiguous)):
        if paths:
            notes.append(
                f"{list_file}: {len(paths)} paths with {what} in them left out (first: {paths[0]})"
            )
    return items


def drop_unreadable(
    items: list[LabelledImage], policy: str, what: str
) -> tuple[list[LabelledImage], list[str]]:
    """Check every picture once (cached verdicts), leave out the unreadable ones (``exclude``)
    or stop (``stop``). Returns the kept items and the report's lines."""
    if not items:
        return [], []
    _, report = scan_images([item.image for item in items], cache=cache_for(items[0].image.parent))
    stop_if_asked(report, policy, what)
    bad = {Path(c.path) for c in report.excluded}
    kept = [i for i in items if i.image not in bad]
    return kept, [f"{what}: {len(kept)} images; {report.summary()}"]


# ----------------------------------------------------------------------------- pictures


@dataclass(frozen=True)
class CropOptions:
    """Darknet's classifier augmentation (``[net]`` keys): the shorter side scaled to a random
    ``r`` in ``[min_crop, max_crop]`` (the picture's aspect first stretched by up to ``aspect``),
    rotated by up to ``angle`` degrees, a random ``size x size`` window, a horizontal ``flip``
    with that probability, then hue shifted by up to ``hue`` and saturation and value scaled by
    up to ``saturation``/``exposure``."""

    min_crop: int
    max_crop: int
    aspect: float = 1.0
    angle: float = 0.0
    flip: float = 0.5
    hue: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0

    @classmethod
    def from_net(cls, net: NetSpec, size: int, **overrides: float) -> CropOptions:
        """The cfg's keys, with the crop range scaled from the cfg's size to ``size``."""
        ratio = size / net.width
        values = dict(
            min_crop=max(1, round(net.min_crop * ratio)),
            max_crop=max(1, round(net.max_crop * ratio)),
            aspect=net.aspect,
            angle=net.angle,
            hue=net.hue,
            saturation=net.saturation,
            exposure=net.exposure,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def random_crop(
    image: np.ndarray, size: int, options: CropOptions, rng: np.random.Generator
) -> np.ndarray:
    """One augmented ``uint8 [size, size, 3]`` sample (see :class:`CropOptions`): scaling,
    rotation, shift and crop in one bilinear warp, as Darknet's ``random_augment_image``."""
    h, w = image.shape[:2]
    aspect = rand_scale(rng, options.aspect) if options.aspect != 1 else 1.0
    side = rng.uniform(options.min_crop, options.max_crop)
    sx = side / min(h, w) * math.sqrt(aspect)  # out = in * s
    sy = side / min(h, w) / math.sqrt(aspect)
    theta = math.radians(rng.uniform(-options.angle, options.angle)) if options.angle else 0.0
    # the scaled picture spans (w*sx, h*sy); choose the window's centre inside it
    span_x, span_y = max(0.0, w * sx - size), max(0.0, h * sy - size)
    cx = rng.uniform(-span_x / 2, span_x / 2)
    cy = rng.uniform(-span_y / 2, span_y / 2)
    cos, sin = math.cos(theta), math.sin(theta)
    # output pixel o -> centred, rotated, unscaled back into the picture
    matrix = np.array([[cos * sx, -sin * sx, 0.0], [sin * sy, cos * sy, 0.0]], dtype=np.float64)
    centre_in = np.array([w / 2, h / 2])
    centre_out = np.array([size / 2 - cx, size / 2 - cy])
    matrix[:, 2] = centre_out - matrix[:, :2] @ centre_in
    out = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if rng.random() < options.flip:
        out = np.ascontiguousarray(out[:, ::-1])
    dhue = rng.uniform(-options.hue, options.hue) if options.hue > 0 else 0.0
    return hsv_distort(
        out, dhue, rand_scale(rng, options.saturation), rand_scale(rng, options.exposure)
    )


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Darknet's classifier ``valid``: the centred square of the shorter side, resized to
    ``size x size`` -> ``uint8 [size, size, 3]``."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


class ClassificationDataset(Dataset):
    """``items`` as ``(uint8 [3, S, S], class, index)``: augmented with ``augment``, else the
    centre crop. Pictures are shrunk once to ``2 * max_crop`` on their shorter side (``cache``
    keeps them in RAM). A picture that cannot be read any more yields a grey sample and
    ``-1 - index`` with ``skip_unreadable``, and raises :class:`DataError` without it."""

    def __init__(
        self,
        items: list[LabelledImage],
        size: int,
        augment: CropOptions | None = None,
        *,
        seed: int = 0,
        cache: bool = False,
        skip_unreadable: bool = True,
    ) -> None:
        self.items, self.size, self.augment = items, size, augment
        self.seed, self.epoch = seed, 0
        self.skip_unreadable = skip_unreadable
        self.keep_side = 2 * (augment.max_crop if augment is not None else size)
        self.cache = [self._read(i) for i in range(len(items))] if cache else None

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, index: int) -> np.ndarray:
        image = read_image(self.items[index].image)
        short = min(image.shape[:2])
        if short > self.keep_side:
            ratio = self.keep_side / short
            size = (round(image.shape[1] * ratio), round(image.shape[0] * ratio))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[Tensor, int, int]:
        """``key``: an index, or ``(index, side, epoch)`` from the multi-scale batch sampler
        (the epoch seeds the augmentation; the side is the dataset's own)."""
        index, epoch = (key, self.epoch) if isinstance(key, int) else (key[0], key[2])
        item = self.items[index]
        try:
            image = self.cache[index] if self.cache is not None else self._read(index)
        except DataError:
            if not self.skip_unreadable:
                raise
            grey = torch.full((3, self.size, self.size), 127, dtype=torch.uint8)
            return grey, item.label, -1 - index
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, epoch, index))
            sample = random_crop(image, self.size, self.augment, rng)
        else:
            sample = center_crop(image, self.size)
        return torch.from_numpy(np.ascontiguousarray(sample.transpose(2, 0, 1))), item.label, index


def collate_classification(
    batch: list[tuple[Tensor, int, int]],
) -> tuple[Tensor, Tensor, list[int]]:
    """Samples -> ``uint8 [B, 3, S, S]``, classes ``int64 [B]`` and the items' indices."""
    images = torch.stack([sample for sample, _, _ in batch])
    labels = torch.tensor([label for _, label, _ in batch], dtype=torch.int64)
    return images, labels, [index for _, _, index in batch]
