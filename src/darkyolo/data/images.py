"""Reading images and video frames as RGB ``uint8 [H, W, 3]`` arrays, and finding them on disk.

Decompression-bomb safety: an image's size is read from its header (Pillow's lazy open, which
decodes no pixels) and a picture over ``max_pixels`` is refused before it is decoded. Decoding
is OpenCV's (EXIF orientation applied), with Pillow as the fallback for formats OpenCV lacks
(GIF, for one). Every failure is a :class:`~darkyolo.errors.DataError` naming the file.
"""

from __future__ import annotations

import glob
import io
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

from darkyolo.errors import DataError, OptionError

#: Refuse pictures larger than this many pixels (about 100 megapixels: 300 MB as RGB).
MAX_PIXELS = 100_000_000

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
LIST_SUFFIXES = frozenset({".txt", ".list"})


def _check_pixels(width: int, height: int, max_pixels: int, file: str) -> None:
    if width * height > max_pixels:
        raise DataError(
            f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (a decompression bomb?); raise max_pixels if it is genuine",
            file,
        )


#: the first bytes of the formats a damaged file is still recognisable as
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
    (b"RIFF", "WEBP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)  # fmt: skip

#: Pillow's switch for decoding truncated files is a module global: flip it under a lock
_PILLOW_TRUNCATED = threading.Lock()


@dataclass(frozen=True)
class Decoded:
    """A decoded picture and what was wrong with its file, if anything.

    ``pixels``: RGB ``uint8 [H, W, 3]``. ``repaired``: why the file needed repair (a truncated
    JPEG or PNG, decoded as far as its data goes; libjpeg fills a JPEG's missing blocks with mid
    grey, exactly as ``cv2.imread`` shows it; a PNG's missing rows stay black), else ``None``. ``format``: the format found in the
    bytes (``JPEG``, ``PNG``...), whatever the file's name says.
    """

    pixels: np.ndarray
    repaired: str | None
    format: str


def decode(data: bytes, file: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> Decoded:
    """Encoded bytes -> :class:`Decoded`; the header size is checked before decoding.

    A truncated file is decoded as far as it goes (``repaired`` says so); anything that cannot be
    decoded at all (empty, not an image, damaged past its header) raises :class:`DataError`.
    """
    stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings():  # darkyolo's own limit is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as header:
                width, height = header.size
                kind = header.format or "unknown"
    except Image.DecompressionBombError as error:
        raise DataError(f"refused by Pillow as a decompression bomb: {error}", file) from None
    except (OSError, ValueError, SyntaxError):
        if not data:
            raise DataError("empty file, not an image", file) from None
        kind = next((k for magic, k in _SIGNATURES if data.startswith(magic)), None)
        if kind is not None:
            raise DataError(f"damaged {kind}: cut or broken inside its header", file) from None
        raise DataError("not a recognised image format", file) from None
    _check_pixels(width, height, max_pixels, file)
    if _has_end_marker(data, kind):  # a cut file goes straight to Pillow: libjpeg and libpng
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)  # would print
        if bgr is not None:
            return Decoded(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, kind)
    # OpenCV refuses truncated files in memory and formats it lacks (GIF...): Pillow decodes them,
    # a truncated one as far as its data goes
    with _PILLOW_TRUNCATED:
        try:
            return Decoded(_pillow_rgb(stream), None, kind)
        except (OSError, ValueError, SyntaxError) as error:
            if "truncated" not in str(error) and "broken data stream" not in str(error):
                raise DataError(f"damaged image: {error}", file) from None
            reason = f"truncated {kind} ({error})"
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            pixels = _pillow_rgb(stream)
        except (OSError, ValueError, SyntaxError) as error:
            raise DataError(f"damaged image: {error}", file) from None
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    return Decoded(pixels, reason, kind)


def _has_end_marker(data: bytes, kind: str) -> bool:
    """False for a JPEG without its end-of-image marker or a PNG without its IEND chunk near the
    end of the bytes (a cut file); True otherwise, and for other formats."""
    tail = data[-1024:]
    if kind == "JPEG":
        return b"\xff\xd9" in tail
    if kind == "PNG":
        return b"IEND" in tail
    return True


def _pillow_rgb(stream: io.BytesIO) -> np.ndarray:
    stream.seek(0)
    with Image.open(stream) as image:
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def decode_image(data: bytes, file: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> RGB ``uint8 [H, W, 3]`` (a truncated file decoded as far as it goes;
    :func:`decode` says whether it was)."""
    return decode(data, file, max_pixels).pixels


def read_bytes(path: str | Path) -> bytes:
    """A picture file's bytes; failures as :class:`DataError` naming the file."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", str(path)) from None


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB ``uint8 [H, W, 3]`` (greyscale and alpha become RGB).

    A truncated file is decoded as far as it goes (use :func:`decode` to learn whether it was).
    Raises :class:`DataError` for a missing, unreadable, undecodable or oversized file.
    """
    return decode(read_bytes(path), str(path), max_pixels).pixels


@dataclass(frozen=True)
class VideoInfo:
    """A video's frame size, rate and (container-reported, maybe 0) frame count."""

    width: int
    height: int
    fps: float
    frames: int


def _open_video(path: str | Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise DataError("no such video file", str(path))
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise DataError("OpenCV cannot open this video (unknown codec or damaged file)", str(path))
    return capture


def video_info(path: str | Path) -> VideoInfo:
    """Frame size, frames per second and frame count of a video."""
    capture = _open_video(path)
    try:
        return VideoInfo(
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
        )
    finally:
        capture.release()


def iter_video_frames(
    path: str | Path, stride: int = 1, max_pixels: int = MAX_PIXELS
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, RGB uint8 [H, W, 3])`` for every ``stride``-th frame of a video."""
    if stride < 1:
        raise OptionError(f"stride must be at least 1, got {stride}")
    capture = _open_video(path)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        _check_pixels(width, height, max_pixels, str(path))
        index = 0
        while True:
            if index % stride:
                if not capture.grab():
                    break
            else:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


@dataclass(frozen=True)
class Source:
    """One thing a source list names, in the order given: an ``image`` or ``video`` file, or a
    ``missing`` entry (``path`` as written, ``reason`` why it names nothing)."""

    kind: str
    path: Path
    reason: str = ""

    @property
    def message(self) -> str:
        """``gone.jpg (no such file or folder)``: what a missing entry is reported as."""
        return f"{self.path} ({self.reason})"


@dataclass
class SourceList:
    """What a list of sources names, in order: image files, video files, and entries that matched
    nothing."""

    entries: list[Source] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        return [e.path for e in self.entries if e.kind == "image"]

    @property
    def videos(self) -> list[Path]:
        return [e.path for e in self.entries if e.kind == "video"]

    @property
    def missing(self) -> list[str]:
        return [e.message for e in self.entries if e.kind == "missing"]

    def __len__(self) -> int:
        return sum(e.kind != "missing" for e in self.entries)


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_list(path: Path) -> list[Path]:
    """A text file of image paths, one a line; relative paths resolve against the working
    directory first (as Darknet does), then against the list file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the image list: {error}", str(path)) from None
    entries = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        entry = Path(text)
        if not entry.is_absolute() and not entry.exists() and (path.parent / entry).exists():
            entry = path.parent / entry
        entries.append(entry)
    return entries


def collect_sources(sources: Iterable[str | Path], recursive: bool = False) -> SourceList:
    """Expand sources into image and video files, in the order given.

    A source is an image file, a video file, a folder (its images, sorted), a glob pattern, or a
    ``.txt`` file listing images one per line. Paths listed explicitly are kept even with an unknown
    suffix (reading them decides); a source that names nothing goes to ``missing``.
    """
    found = SourceList()

    def add_file(path: Path) -> None:
        kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
        found.entries.append(Source(kind, path))

    def add_missing(text: str, reason: str) -> None:
        found.entries.append(Source("missing", Path(text), reason))

    for source in sources:
        text = os.fspath(source)
        path = Path(text)
        if path.is_dir():
            images = _images_in(path, recursive)
            found.entries.extend(Source("image", image) for image in images)
            if not images:
                add_missing(text, "a folder with no images")
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found.entries.extend(Source("image", image) for image in _read_list(path))
        elif path.is_file():
            add_file(path)
        elif _is_glob(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [
                p
                for p in matches
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            ]
            for file in files:
                add_file(file)
            if not files:
                add_missing(text, "no image or video matches")
        else:
            add_missing(text, "no such file or folder")
    return found
