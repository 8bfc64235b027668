"""1,000 random and mutated requests against a running server: never a 5xx, never a dead server."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import httpx
import numpy as np
from tests.serve.conftest import running_server

REQUESTS = 1000
QUERY_KEYS = ["conf", "iou", "classes", "max_det", "size", "x", "", "conf[]"]
QUERY_VALUES = ["0.5", "-1", "1e400", "nan", "inf", "", "abc", "0,1,2", "99999", "32", "416", "\0", "%00", "1" * 40]  # fmt: skip
CONTENT_TYPES = [
    None, "image/jpeg", "text/plain", "application/json", "multipart/form-data",
    "multipart/form-data; boundary=x", "multipart/form-data; boundary=", "image/png; charset=\u00e9",
]  # fmt: skip


def _small_picture() -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # flip bytes
            for i in rng.sample(range(len(data)), min(len(data), rng.randint(1, 8))):
                data[i] = rng.randrange(256)
        elif kind == 1:  # cut
            data = data[:at]
        elif kind == 2:  # insert
            data[at:at] = rng.randbytes(rng.randint(1, 64))
        elif kind == 3:  # delete a run
            del data[at : at + rng.randint(1, 64)]
        else:  # append junk
            data += rng.randbytes(rng.randint(1, 256))
    return bytes(data)


def _multipart(payload: bytes, rng: random.Random) -> tuple[bytes, str]:
    boundary = rng.choice(["b0undary", "x", "----", "a" * 70])
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n".encode()
        + payload + b"\r\n"
    ] * rng.randint(0, 2)  # fmt: skip
    body = b"".join(parts) + (f"--{boundary}--\r\n".encode() if rng.random() < 0.8 else b"")
    return _mutate(body, rng) if rng.random() < 0.3 else body, f"multipart/form-data; boundary={boundary}"  # fmt: skip


def test_random_and_mutated_requests_never_break_the_server(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    picture = _small_picture()
    statuses: dict[int, int] = {}
    with running_server(tmp_path, "--max-batch", "4") as url, httpx.Client(timeout=60) as client:
        for number in range(REQUESTS):
            roll = rng.random()
            headers: dict[str, str] = {}
            if roll < 0.45:
                body = _mutate(picture, rng)
            elif roll < 0.6:
                body = rng.randbytes(rng.randint(0, 2048))
            elif roll < 0.8:
                body, headers["content-type"] = _multipart(_mutate(picture, rng), rng)
            else:
                body = picture
            kind = rng.choice(CONTENT_TYPES)
            if kind is not None and "content-type" not in headers:
                headers["content-type"] = kind
            if rng.random() < 0.2:
                headers[rng.choice(["authorization", "x-api-key", "accept", "x-junk"])] = rng.choice(["Bearer", "", "\u00e9\u00e9", "x" * 500])  # fmt: skip
            query = [
                (rng.choice(QUERY_KEYS), rng.choice(QUERY_VALUES)) for _ in range(rng.randint(0, 3))
            ]  # sent percent-encoded, NUL and all
            try:
                raw = {k: v.encode() for k, v in headers.items()}  # non-ASCII bytes go as they are
                answer = client.post(f"{url}/v1/detect", params=query, content=body, headers=raw)
            except httpx.LocalProtocolError:  # a header httpx itself will not send
                continue
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (
                number,
                answer.status_code,
                answer.text,
                headers,
                query,
            )
            assert "error" in answer.json() or answer.status_code == 200
            if number % 100 == 0:
                assert client.get(f"{url}/healthz").status_code == 200
        assert client.get(f"{url}/healthz").status_code == 200
    assert sum(statuses.values()) >= 950, statuses
    assert statuses.get(200, 0) > 50 and len(statuses) >= 4, statuses
    print(f"fuzz: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
