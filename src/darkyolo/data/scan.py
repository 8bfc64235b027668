"""Every picture checked before it is needed: opened, sized and decoded, in parallel, remembered.

Training, validation and ``darkyolo check`` scan the pictures of the splits they use before the
first update, so a damaged file is found in seconds, not at the first validation hours later:

* a truncated JPEG or PNG is **repaired**: decoded as far as its data goes (the rest grey, as
  Darknet and OpenCV show it), kept, counted and named;
* a file that is empty, not a picture, or damaged past its header is **excluded** from its split,
  counted and named with its boxes, or, with the ``stop`` policy, stops the run before training;
* a picture over the pixel limit is excluded the same way (``stop``: refused by name);
* a file whose bytes are another format than its name says (a PNG named ``.jpg``) is decoded by
  its content and counted as **renamed**.

Results are remembered per file (absolute path, size, modification time) in a JSON cache under
:func:`cache_dir`, so a second scan of unchanged files costs a ``stat`` each.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from darkyolo.data.images import MAX_PIXELS, decode, read_bytes
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.errors import DataError, OptionError

#: what to do with a picture that cannot be decoded at all
BAD_IMAGE_POLICIES = ("exclude", "stop")

#: a file name's suffix -> the format its bytes should hold
_SUFFIX_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
    ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
}  # fmt: skip

_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where scans are remembered: ``$DARKYOLO_CACHE_DIR``, else ``~/.cache/darkyolo``."""
    return Path(os.environ.get("DARKYOLO_CACHE_DIR") or Path.home() / ".cache" / "darkyolo")


@dataclass(frozen=True)
class ImageCheck:
    """One picture's verdict: ``status`` ``ok``, ``renamed``, ``repaired`` or ``excluded``, and
    why (empty for ``ok``)."""

    path: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.status}: {self.message}" if self.message else self.path


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> ImageCheck:
    """Open, size and decode one picture; never raises for a bad file."""
    try:
        decoded = decode(read_bytes(path), str(path), max_pixels)
    except DataError as error:
        return ImageCheck(str(path), "excluded", error.reason)
    if decoded.repaired:
        return ImageCheck(str(path), "repaired", decoded.repaired)
    expected = _SUFFIX_FORMATS.get(Path(path).suffix.lower())
    if expected is not None and decoded.format not in (expected, "MPO"):  # MPO: a JPEG variant
        return ImageCheck(
            str(path), "renamed", f"{decoded.format} data in a {Path(path).suffix} file"
        )
    return ImageCheck(str(path), "ok")


@dataclass
class ScanReport:
    """What a scan found, and how long it took (``cached``: verdicts reused from the cache)."""

    checked: int = 0
    cached: int = 0
    seconds: float = 0.0
    repaired: list[ImageCheck] = field(default_factory=list)
    excluded: list[ImageCheck] = field(default_factory=list)
    renamed: list[ImageCheck] = field(default_factory=list)
    excluded_boxes: int = 0
    listing: Path | None = None

    @property
    def problems(self) -> list[ImageCheck]:
        return [*self.excluded, *self.repaired, *self.renamed]

    def summary(self, limit: int = 3) -> str:
        """One line: checked, repaired, excluded (with their boxes), the first names, the list."""
        line = f"pictures: {self.checked} checked ({self.cached} unchanged since the last scan)"
        parts = []
        if self.repaired:
            parts.append(f"{len(self.repaired)} truncated and repaired")
        if self.excluded:
            parts.append(f"{len(self.excluded)} excluded with their {self.excluded_boxes} boxes")
        if self.renamed:
            parts.append(f"{len(self.renamed)} of another format than their name says")
        if not parts:
            return line + ", all fine"
        names = ", ".join(Path(c.path).name for c in self.problems[:limit])
        more = f" and {len(self.problems) - limit} more" if len(self.problems) > limit else ""
        where = f"; all listed in {self.listing}" if self.listing else ""
        return f"{line}: {', '.join(parts)} ({names}{more}){where}"

    def as_problems(self, warnings: bool = True) -> list[Problem]:
        """The findings as dataset problems: excluded pictures are errors (``missing-image`` or
        ``bad-image``); with ``warnings``, repaired and renamed ones are warnings."""
        problems = []
        for check in self.excluded:
            kind = "bad-image" if Path(check.path).exists() else "missing-image"
            problems.append(Problem("error", kind, check.message, check.path))
        if warnings:
            for check in self.repaired:
                message = f"{check.message}; decoded as far as it goes, the rest grey"
                problems.append(Problem("warning", "truncated-image", message, check.path))
            for check in self.renamed:
                message = f"{check.message}; decoded by its content"
                problems.append(Problem("warning", "renamed-image", message, check.path))
        return problems

    def write_listing(self, path: str | Path) -> Path:
        """Every picture that was not plainly fine, one ``path: status: why`` line each."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{c}\n" for c in self.problems), encoding="utf-8")
        self.listing = path
        return path


def scan_images(
    paths: Sequence[str | Path],
    *,
    cache: Path | None = None,
    workers: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> tuple[dict[str, ImageCheck], ScanReport]:
    """Check every picture (each path once), reusing ``cache`` verdicts for unchanged files.

    Returns ``{path as given: ImageCheck}`` and the report (no boxes counted: see
    :func:`scan_records`).
    """
    start = time.perf_counter()
    unique = list(dict.fromkeys(str(p) for p in paths))
    remembered = _load_cache(cache)
    keys = {p: _file_key(p) for p in unique}
    checks: dict[str, ImageCheck] = {}
    todo = []
    for path in unique:
        key = keys[path]
        entry = remembered.get(key[0]) if key is not None else None
        if key is not None and entry is not None and entry[:2] == [key[1], key[2]]:
            checks[path] = ImageCheck(path, entry[2], entry[3])
        else:
            todo.append(path)
    cached = len(checks)
    if todo:
        threads = workers or min(8, (os.cpu_count() or 1) + 2)
        with ThreadPoolExecutor(max(1, threads)) as pool:  # OpenCV decodes without the GIL
            for path, check in zip(todo, pool.map(lambda p: check_image(p, max_pixels), todo)):
                checks[path] = check
        if cache is not None:
            for path in todo:
                key = keys[path]
                if key is not None:
                    remembered[key[0]] = [key[1], key[2], checks[path].status, checks[path].message]
            _save_cache(cache, remembered)
    report = ScanReport(checked=len(unique), cached=cached)
    for check in checks.values():
        if check.status in ("repaired", "excluded", "renamed"):
            getattr(report, check.status).append(check)
    report.seconds = time.perf_counter() - start
    return checks, report


def read_scanned(
    images: Sequence[Path],
    num_classes: int | None,
    problems: list[Problem] | None,
    *,
    policy: str = "exclude",
    cache: Path | None = None,
    what: str = "the data",
    voc_names: Sequence[str] | None = None,
) -> tuple[list[ImageRecord], ScanReport]:
    """Scan ``images`` (:func:`scan_images`), apply the policy, then read the kept pictures' records
    (:func:`~darkyolo.data.description.read_records`: label problems into ``problems``, or raised
    at the first when it is ``None``; ``voc_names``: VOC ``.xml`` labels beside the pictures).

    Excluded pictures are left out with their boxes counted (the lines of their label files); with
    ``policy="stop"`` any of them raises :class:`DataError` naming the first few and the count.
    When something was found, every such picture is listed in a file beside the cache.
    """
    from darkyolo.data.description import read_records
    from darkyolo.data.formats.yolo import label_path_for

    _, report = scan_images(images, cache=cache)
    stop_if_asked(report, policy, what)
    bad = {c.path for c in report.excluded}
    if bad and problems is None:  # strict: the first problem is an error
        first = report.excluded[0]
        raise DataError(first.message, first.path)
    report.excluded_boxes = sum(_label_lines(label_path_for(Path(p))) for p in bad)
    if problems is not None:
        problems.extend(report.as_problems(warnings=False))
    if report.problems:
        name = (cache or cache_dir() / "image-scan").stem
        report.write_listing(cache_dir() / f"{name}-{_slug(what)}-problems.txt")
    kept = [image for image in images if str(image) not in bad]
    found: list[Problem] = [] if problems is None else problems
    before = len(found)
    records = read_records(kept, num_classes, None if problems is None else found, voc_names)
    unreadable = [p for p in found[before:] if p.kind in ("missing-image", "bad-image")]
    if unreadable and policy == "stop":  # changed since a scan that the cache remembered
        raise DataError(f"unreadable picture in {what} (--bad-images stop): {unreadable[0]}")
    return records, report


def stop_if_asked(report: ScanReport, policy: str, what: str) -> None:
    """With ``policy="stop"``, a :class:`DataError` naming the first excluded pictures and the
    count; with ``exclude``, nothing (the caller leaves them out)."""
    if policy not in BAD_IMAGE_POLICIES:
        raise OptionError(f"--bad-images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {policy!r}")  # fmt: skip
    bad = report.excluded
    if bad and policy == "stop":
        first = "; ".join(f"{c.path}: {c.message}" for c in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise DataError(
            f"{len(bad)} unreadable pictures in {what} (--bad-images stop): {first}{more}"
        )


def _label_lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return 0


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-") or "data"


def cache_for(anchor: str | Path) -> Path:
    """The cache file for one dataset, named by its description file's absolute path."""
    digest = hashlib.sha1(str(Path(anchor).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"image-scan-{digest}.json"


def _file_key(path: str) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def _load_cache(cache: Path | None) -> dict[str, list]:
    if cache is None:
        return {}
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: scan again
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _save_cache(cache: Path, files: dict[str, list]) -> None:
    """Write atomically; a cache that cannot be written (read-only home) is simply not kept."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": _CACHE_VERSION, "files": files}), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
