"""``darkyolo serve`` through HTTP: detections equal ``darkyolo detect``; every refusal is a 4xx
with a message; batching, a bounded queue, an API key, metrics."""

from __future__ import annotations

import asyncio
import struct
import zlib
from importlib import resources
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.serve.conftest import running_server

from darkyolo.inference.engines import choose_backend
from darkyolo.inference.predictor import Detector

SAMPLES = Path(str(resources.files("darkyolo") / "assets" / "samples"))
DOG = (SAMPLES / "dog.jpg").read_bytes()


def post(url: str, body: bytes, query: str = "", **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/detect{query}", content=body, timeout=60, **kwargs)


def test_detections_equal_darkyolo_detect(server: str) -> None:
    for name in ("dog.jpg", "horses.jpg", "person.jpg"):
        answer = post(server, (SAMPLES / name).read_bytes()).json()
        local = Detector().predict(SAMPLES / name)[0]
        found = answer["detections"]
        assert len(found) == len(local) > 0, name
        boxes = np.array([d["box"] for d in found])
        assert np.abs(boxes - local.boxes).max() <= 1.5e-3, name  # JSON keeps 1e-3 px
        scores = np.array([d["score"] for d in found])
        assert np.abs(scores - local.scores).max() <= 1e-5, name
        assert [d["class_name"] for d in found] == local.label_names
    assert answer["image"] == {"width": 640, "height": 424, "format": "JPEG"}
    assert answer["model"] == "yolov3-tiny-coco" and answer["repaired"] is None


def test_multipart_and_query_options(server: str) -> None:
    form = httpx.post(
        f"{server}/v1/detect?conf=0.5&classes=16,1&size=320",
        files={"file": ("dog.jpg", DOG, "image/jpeg")}, timeout=60,
    ).json()  # fmt: skip
    assert form["input"] == {"height": 320, "width": 320}
    assert {d["class_name"] for d in form["detections"]} <= {"dog", "bicycle"}
    assert all(d["score"] >= 0.5 for d in form["detections"])


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG of ``width x height`` black pixels: tiny on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\0" * (1 + width)  # filter byte + greyscale row
    pixels = zlib.compressobj(9)
    data = b"".join(pixels.compress(row) for _ in range(height)) + pixels.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("body", "query", "status", "message"),
    [
        (b"", "", 400, "the request has no picture (empty body)"),
        (b"hello, not a picture\n", "", 415, "the body is not a picture"),
        (DOG[:300], "", 422, "the picture cannot be decoded"),
        (DOG, "?conf=2", 422, "conf must lie in 0..1, got '2'"),
        (DOG, "?conf=nan", 422, "conf must lie in 0..1"),
        (DOG, "?size=33", 422, "size must be a multiple of 32, got 33"),
        (DOG, "?classes=99", 422, "classes must lie in 0..79"),
        (DOG, "?max_det=x", 422, "max_det must be an integer"),
        (DOG, "?colour=red", 422, "unknown query option 'colour'"),
    ],
)
def test_refusals(server: str, body: bytes, query: str, status: int, message: str) -> None:
    answer = post(server, body, query)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_a_truncated_jpeg_is_repaired_and_says_so(server: str) -> None:
    answer = post(server, DOG[:-20])
    assert answer.status_code == 200
    assert answer.json()["repaired"].startswith("truncated JPEG")


def test_a_png_bomb_is_refused_before_decoding(server: str) -> None:
    bomb = _png_claiming(8000, 8000)
    assert len(bomb) < 400_000
    answer = post(server, bomb)
    assert answer.status_code == 413
    assert "8000x8000 = 64,000,000 pixels is over the limit of 40,000,000" in answer.json()["error"]


def test_a_50_mb_body_is_refused(server: str) -> None:
    body = DOG + b"\0" * (50 * 2**20)
    answer = post(server, body)
    assert answer.status_code == 413 and "the limit is 20,971,520" in answer.json()["error"]

    def chunks():  # no Content-Length: counted while reading
        for start in range(0, len(body), 2**20):
            yield body[start : start + 2**20]

    answer = httpx.post(f"{server}/v1/detect", content=chunks(), timeout=60)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]


def test_model_health_and_metrics(server: str) -> None:
    model = httpx.get(f"{server}/v1/model").json()
    assert model["name"] == "yolov3-tiny-coco" and model["num_classes"] == 80
    auto = choose_backend("auto")[0]  # what serve runs by default here
    assert model["input_size"] == {"height": 416, "width": 416} and model["backend"] == auto
    assert {Path(f["path"]).name for f in model["files"]} == {
        "yolov3-tiny.cfg",
        "yolov3-tiny.weights",
    }
    weights = next(f for f in model["files"] if f["path"].endswith(".weights"))
    assert weights["sha256"].startswith("dccea06f59b781ec")
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    post(server, b"")
    text = httpx.get(f"{server}/metrics").text
    assert 'darkyolo_requests_total{path="/v1/detect",status="400"}' in text
    assert 'darkyolo_refused_total{reason="empty"}' in text
    assert "darkyolo_request_seconds_bucket" in text and "darkyolo_batch_size_bucket" in text
    assert "darkyolo_queue_depth" in text
    missing = httpx.get(f"{server}/nope")
    assert missing.status_code == 404 and "no such endpoint" in missing.json()["error"]
    assert httpx.get(f"{server}/v1/detect").status_code == 405


async def _many(url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(
            *(client.post(f"{url}/v1/detect", content=DOG) for _ in range(count))
        )


def test_concurrent_requests_share_batches(server: str) -> None:
    answers = asyncio.run(_many(server, 16))
    assert all(a.status_code == 200 for a in answers)
    sizes = [a.json()["batch_size"] for a in answers]
    assert max(sizes) > 1, sizes
    first = answers[0].json()["detections"]
    assert all(a.json()["detections"] == first for a in answers)  # batching changes nothing


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    with running_server(tmp_path, "--max-batch", "1", "--queue-size", "1") as url:
        answers = asyncio.run(_many(url, 24))
        busy = [a for a in answers if a.status_code == 503]
        assert busy and all(a.headers["Retry-After"] == "1" for a in busy)
        assert "busy" in busy[0].json()["error"]
        assert all(a.status_code in (200, 503) for a in answers)
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_an_api_key_guards_v1(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret-key\n")
    with running_server(tmp_path, "--api-key-file", str(key)) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret"}):
            answer = post(url, DOG, headers=headers)
            assert answer.status_code == 401, headers
            assert "API key" in answer.json()["error"]
        assert post(url, DOG, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert post(url, DOG, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert httpx.get(f"{url}/v1/model").status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # health stays open
