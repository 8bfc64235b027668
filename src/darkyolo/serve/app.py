"""The FastAPI application: endpoints, metrics, one log line per request, the web page.

==================  ======================================================================
``POST /v1/detect``  one picture (raw body or multipart) -> boxes in the picture's pixels
``GET /v1/model``    name, classes, input size, backend, source files' sha256
``GET /healthz``     alive; ``GET /readyz``: the model is loaded and has run once
``GET /metrics``     Prometheus text: requests by status, latency, batch sizes, queue depth,
                     refusals by reason
``GET /``            the web page (``page.html``: plain HTML and JavaScript, nothing external)
==================  ======================================================================

Every refusal is a 4xx with ``{"error": "..."}``; an unexpected failure is a 500 with the same
shape, logged, and the process goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from darkyolo.inference.predictor import Detector
from darkyolo.serve.batcher import Batcher
from darkyolo.serve.requests import (
    DetectOptions,
    Refusal,
    check_api_key,
    class_list,
    decode_picture,
    parse_options,
    picture_bytes,
    read_body,
)
from darkyolo.serve.settings import ServeOptions

log = logging.getLogger("darkyolo.serve")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "darkyolo_requests", "HTTP requests by path and status", ["path", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "darkyolo_request_seconds", "Time to answer /v1/detect",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry,
        )  # fmt: skip
        self.batch = Histogram(
            "darkyolo_batch_size", "Pictures per network call",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64), registry=self.registry,
        )  # fmt: skip
        self.queue = Gauge("darkyolo_queue_depth", "Pictures waiting", registry=self.registry)
        self.refused = Counter(
            "darkyolo_refused", "Pictures refused, by reason", ["reason"], registry=self.registry
        )


def create_app(detector: Detector, settings: ServeOptions, *, backend_name: str = "") -> Any:
    """The ASGI application serving ``detector``."""
    metrics = _Metrics()
    defaults = DetectOptions(
        detector.conf, detector.iou, detector.max_det,
        tuple(detector.classes) if detector.classes else None, detector.input_hw,
    )  # fmt: skip
    files = [{"path": str(f), "sha256": sha256(f)} for f in detector.source_files]
    model_info = {
        "name": detector.model_name,
        "classes": class_list(detector.names),
        "num_classes": detector.num_classes,
        "input_size": {"height": detector.input_hw[0], "width": detector.input_hw[1]},
        "stride": detector.stride,
        "backend": backend_name or detector.backend_name,
        "files": files,
        "defaults": {"conf": detector.conf, "iou": detector.iou, "max_det": detector.max_det},
    }
    page = (resources.files("darkyolo.serve") / "page.html").read_text(encoding="utf-8")
    state: dict[str, Any] = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(
            detector.backend,
            max_batch=settings.max_batch,
            max_wait_s=settings.max_wait_ms / 1000,
            queue_size=settings.queue_size,
            on_batch=metrics.batch.observe,
        )
        warm = np.full((*detector.input_hw, 3), 128, np.uint8)
        await asyncio.get_running_loop().run_in_executor(None, batcher.run_now, warm, defaults)
        batcher.start()
        state["batcher"], state["ready"] = batcher, True
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(title="darkyolo", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)  # fmt: skip
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"], allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )  # fmt: skip

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    @app.middleware("http")
    async def one_line_per_request(request: Request, call_next):
        start = time.perf_counter()
        request.state.picture = request.state.boxes = None
        try:
            response = await call_next(request)
        except Exception:  # never lose the process over one request
            log.exception("unexpected failure on %s %s", request.method, request.url.path)
            response = error(500, "internal error; see the server log")
        path = request.url.path
        known = path if path in ("/", "/v1/detect", "/v1/model", "/healthz", "/readyz", "/metrics") else "other"  # fmt: skip
        metrics.requests.labels(known, str(response.status_code)).inc()
        ms = 1000 * (time.perf_counter() - start)
        picture = request.state.picture
        extra = ""
        if picture is not None:
            extra = f" {picture[1]}x{picture[0]}"
        if request.state.boxes is not None:
            extra += f" {request.state.boxes} boxes"
        log.info("%s %s %d %.1f ms%s", request.method, path, response.status_code, ms, extra)
        return response

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error(404, f"no such endpoint: {request.method} {request.url.path}")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc: Exception) -> JSONResponse:
        return error(405, f"{request.method} is not allowed on {request.url.path}")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not state["ready"]:
            return error(503, "the model is not loaded yet")
        return JSONResponse({"status": "ready", "model": detector.model_name})

    @app.get("/metrics")
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if "batcher" in state:
            metrics.queue.set(state["batcher"].queue.qsize())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    async def model(request: Request) -> JSONResponse:
        try:
            if settings.api_key:
                check_api_key(request.headers, settings.api_key)
        except Refusal as refusal:
            metrics.refused.labels(refusal.reason).inc()
            return error(refusal.status, refusal.message)
        return JSONResponse(model_info)

    @app.post("/v1/detect")
    async def detect(request: Request) -> JSONResponse:
        start = time.perf_counter()
        try:
            if settings.api_key:
                check_api_key(request.headers, settings.api_key)
            options = parse_options(
                request.query_params, defaults=defaults,
                num_classes=detector.num_classes, stride=detector.stride,
            )  # fmt: skip
            body = await read_body(request.headers, request.stream(), settings.max_body_bytes)
            data = await picture_bytes(request.headers, body, settings.max_body_bytes)
            loop = asyncio.get_running_loop()
            decoded = await loop.run_in_executor(None, decode_picture, data, settings.max_pixels)
        except Refusal as refusal:
            metrics.refused.labels(refusal.reason).inc()
            return error(refusal.status, refusal.message)
        decoded_at = time.perf_counter()
        request.state.picture = decoded.pixels.shape[:2]
        batcher: Batcher = state["batcher"]
        try:
            future = batcher.submit(decoded.pixels, options)
        except asyncio.QueueFull:
            metrics.refused.labels("busy").inc()
            return error(503, "the server is busy; try again shortly", **{"Retry-After": "1"})
        try:
            found = await asyncio.wait_for(asyncio.shield(future), settings.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()
            metrics.refused.labels("timeout").inc()
            return error(504, f"no result within {settings.timeout_s:g} s")
        request.state.boxes = len(found.scores)
        total = time.perf_counter() - start
        metrics.latency.observe(total)
        h, w = decoded.pixels.shape[:2]
        return JSONResponse(
            {
                "model": detector.model_name,
                "image": {"width": w, "height": h, "format": decoded.format},
                "input": {"height": options.input_hw[0], "width": options.input_hw[1]},
                "repaired": decoded.repaired,
                "detections": [
                    {
                        "box": [round(float(v), 3) for v in box],
                        "class_id": int(label),
                        "class_name": detector.names[int(label)],
                        "score": round(float(score), 6),
                    }
                    for box, score, label in zip(found.boxes, found.scores, found.labels)
                ],
                "timings_ms": {
                    "decode": round(1000 * (decoded_at - start), 2),
                    "queue": round(1000 * found.queued_s, 2),
                    "inference": round(1000 * found.inference_s, 2),
                    "total": round(1000 * total, 2),
                },
                "batch_size": found.batch_size,
            }
        )

    return app
