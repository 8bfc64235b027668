"""One request's picture and options, checked: every problem becomes a :class:`Refusal` (a 4xx
with a message that says what was wrong), never an exception that reaches the server.

The picture comes as the raw body (any content type but multipart) or as the one file of a
``multipart/form-data`` body. Its type is decided by its bytes, never by a name or a header. The
body's size is checked against ``Content-Length`` before reading and again while reading (a
chunked body has no length); the pixel count is checked from the header before decoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from darkyolo.data.images import Decoded, decode
from darkyolo.errors import DataError

#: formats a client may send, as Pillow names them from the bytes
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF"})
#: the query options ``/v1/detect`` reads
QUERY_OPTIONS = ("conf", "iou", "classes", "max_det", "size")


class Refusal(Exception):
    """A request the service will not serve: HTTP ``status``, a metrics ``reason``, a message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class DetectOptions:
    """Per-request post-processing and input size (the detector's defaults where not given)."""

    conf: float
    iou: float
    max_det: int
    classes: tuple[int, ...] | None
    input_hw: tuple[int, int]


def parse_options(
    query: Mapping[str, str],
    *,
    defaults: DetectOptions,
    num_classes: int,
    stride: int,
    max_side: int = 1280,
) -> DetectOptions:
    """``?conf=0.3&iou=0.5&classes=0,2&max_det=50&size=416`` -> :class:`DetectOptions`."""
    unknown = sorted(set(query) - set(QUERY_OPTIONS))
    if unknown:
        raise Refusal(
            422,
            "bad-query",
            f"unknown query option {unknown[0]!r}; known: {', '.join(QUERY_OPTIONS)}",
        )
    conf = _number(query, "conf", defaults.conf, 0.0, 1.0)
    iou = _number(query, "iou", defaults.iou, 0.0, 1.0)
    max_det = int(_number(query, "max_det", defaults.max_det, 1, 1000, integer=True))
    classes = defaults.classes
    if "classes" in query:
        try:
            classes = tuple(int(c) for c in query["classes"].split(",") if c.strip())
        except ValueError:
            raise Refusal(
                422,
                "bad-query",
                f"classes must be comma-separated integers, got {query['classes']!r}",
            ) from None
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad or not classes:
            raise Refusal(422, "bad-query", f"classes must lie in 0..{num_classes - 1}, got {query['classes']!r}")  # fmt: skip
    input_hw = defaults.input_hw
    if "size" in query:
        side = int(_number(query, "size", 0, stride, max_side, integer=True))
        if side % stride:
            raise Refusal(422, "bad-query", f"size must be a multiple of {stride}, got {side}")
        input_hw = (side, side)
    return DetectOptions(conf, iou, max_det, classes, input_hw)


def _number(
    query: Mapping[str, str],
    key: str,
    default: float,
    low: float,
    high: float,
    integer: bool = False,
) -> float:
    if key not in query:
        return default
    text = query[key]
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise Refusal(422, "bad-query", f"{key} must be {kind}, got {text!r}") from None
    if not low <= value <= high:  # NaN fails this too
        raise Refusal(422, "bad-query", f"{key} must lie in {low:g}..{high:g}, got {text!r}")
    return value


async def read_body(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise Refusal(400, "bad-length", f"Content-Length must be a number, got {length!r}")
        if int(length) > limit:
            raise Refusal(413, "too-large", f"the body is {int(length):,} bytes; the limit is {limit:,}")  # fmt: skip
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "too-large", f"the body is over the limit of {limit:,} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def picture_bytes(headers: Mapping[str, str], body: bytes, limit: int) -> bytes:
    """The picture's bytes: the body itself, or the one file part of a multipart form."""
    content_type = headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return body
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(
        headers,
        stream(),
        max_files=1,
        max_fields=16,
        max_part_size=limit,  # type: ignore[arg-type]
    )
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError) as error:
        raise Refusal(400, "bad-form", f"cannot read the multipart form: {error}") from None
    files = [value for value in form.values() if isinstance(value, UploadFile)]
    if len(files) != 1:
        raise Refusal(400, "bad-form", f"the form must hold one file, it holds {len(files)}")
    data = await files[0].read()
    await form.close()
    return data


def decode_picture(data: bytes, max_pixels: int) -> Decoded:
    """Decode by content; refusals: empty (400), not a picture or not an accepted format (415),
    too many pixels (413, checked before decoding), damaged past repair (422). A truncated JPEG or
    PNG is decoded as far as it goes, and the result says so."""
    if not data:
        raise Refusal(400, "empty", "the request has no picture (empty body)")
    try:
        decoded = decode(data, "picture", max_pixels)
    except DataError as error:
        reason = error.reason
        if "over the limit" in reason or "decompression bomb" in reason:
            raise Refusal(413, "too-many-pixels", reason) from None
        if "not a recognised image format" in reason:
            raise Refusal(415, "not-an-image", "the body is not a picture (JPEG, PNG, BMP, WebP, TIFF or GIF)") from None  # fmt: skip
        raise Refusal(422, "damaged", f"the picture cannot be decoded: {reason}") from None
    if decoded.format not in ACCEPTED_FORMATS:
        raise Refusal(415, "not-an-image", f"{decoded.format} pictures are not accepted")
    return decoded


def check_api_key(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (constant-time compare)."""
    import hmac

    given = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None or not hmac.compare_digest(given.encode(), key.encode()):
        raise Refusal(401, "bad-key", "missing or wrong API key (Authorization: Bearer KEY)")


def class_list(names: Sequence[str]) -> list[dict[str, object]]:
    return [{"id": k, "name": n} for k, n in enumerate(names)]
