"""The service's settings: one frozen object, decided once by the command line (or a test)."""

from __future__ import annotations

from dataclasses import dataclass

#: a served picture may be this large at most (a 40-megapixel photo), unless told otherwise;
#: lower than the library's 100 MP: a service decodes strangers' pictures all day
MAX_PIXELS = 40_000_000
#: request bodies larger than this are refused (413) before they are read to the end
MAX_BODY_BYTES = 20 * 2**20


@dataclass(frozen=True)
class ServeOptions:
    """How the service runs.

    ``max_batch`` pictures share one network call, waiting at most ``max_wait_ms`` for the batch
    to fill (``max_batch=1``: no batching). At most ``queue_size`` pictures wait; beyond that a
    request gets 503 with ``Retry-After``. A request waits at most ``timeout_s`` for its result
    (504). ``api_key``: when set, ``/v1/*`` needs ``Authorization: Bearer KEY`` or ``X-API-Key``.
    ``cors_origins``: origins allowed to call from a browser (none: CORS off).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 8
    max_wait_ms: float = 10.0
    queue_size: int = 64
    timeout_s: float = 30.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_pixels: int = MAX_PIXELS
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from darkyolo.errors import DarkyoloError

        for name in ("max_batch", "queue_size", "max_body_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise DarkyoloError(f"{name.replace('_', '-')} must be at least 1")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise DarkyoloError("max-wait-ms must be >= 0 and the timeout > 0")
        if not 0 <= self.port <= 65535:
            raise DarkyoloError(f"port must lie in 0..65535, got {self.port}")
