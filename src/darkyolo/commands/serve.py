"""``darkyolo serve [--model M] [--weights W]``: a detection service over HTTP (see
:mod:`darkyolo.serve`)."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from darkyolo.commands.model_args import add_engine_arguments, add_model_arguments
from darkyolo.errors import DarkyoloError
from darkyolo.serve.settings import MAX_BODY_BYTES, MAX_PIXELS
from darkyolo.values import (
    INPUT_SIDE,
    NON_NEGATIVE_FLOAT,
    PORT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
)

HELP = "serve a model over HTTP: POST /v1/detect, a web page at /, Prometheus /metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=PORT, default=8000)
    add_engine_arguments(parser, "; OpenVINO serves with throughput streams")
    parser.add_argument(
        "--img-size", type=INPUT_SIDE, help="default input side (default: the cfg's)"
    )
    parser.add_argument("--conf", type=PROBABILITY, default=0.25, help="default score threshold")
    parser.add_argument("--iou", type=PROBABILITY, default=0.45, help="default NMS IoU")
    parser.add_argument(
        "--max-det", type=POSITIVE_INT, default=300, help="default detections per picture"
    )
    parser.add_argument(
        "--max-batch", type=POSITIVE_INT, default=8, help="pictures per network call"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=NON_NEGATIVE_FLOAT,
        default=10.0,
        help="how long a batch waits to fill",
    )
    parser.add_argument(
        "--queue-size", type=POSITIVE_INT, default=64, help="pictures waiting at most"
    )
    parser.add_argument("--timeout", type=POSITIVE_FLOAT, default=30.0, help="seconds per request")
    parser.add_argument(
        "--max-body-mb",
        type=POSITIVE_FLOAT,
        default=MAX_BODY_BYTES / 2**20,
        help="request body limit",
    )
    parser.add_argument(
        "--max-pixels", type=POSITIVE_INT, default=MAX_PIXELS, help="pixels per picture at most"
    )
    parser.add_argument(
        "--api-key-file", type=Path, help="file holding the key that /v1/* then requires"
    )
    parser.add_argument(
        "--cors-origin", action="append", default=[], help="allow browser calls from this origin"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (torch backend)")


def run(args: argparse.Namespace) -> int:
    from darkyolo.extras import require

    require("serve", "darkyolo serve")
    _check_port(args.host, args.port)

    import logging

    import uvicorn

    from darkyolo.inference.predictor import Detector
    from darkyolo.serve.app import create_app
    from darkyolo.serve.settings import ServeOptions

    key = None
    if args.api_key_file is not None:
        key = args.api_key_file.read_text(encoding="utf-8").strip()
        if not key:
            raise DarkyoloError(f"{args.api_key_file}: the API key file is empty")
    settings = ServeOptions(
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        timeout_s=args.timeout,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_pixels=args.max_pixels,
        api_key=key,
        cors_origins=tuple(args.cors_origin),
    )
    detector = Detector(
        args.model,
        args.weights,
        random_weights=args.random_weights,
        backend=args.backend,
        img_size=args.img_size,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        threads=args.threads,
        device=args.device,
        batch_size=args.max_batch,
    )
    for note in detector.notes:
        print(note)
    print(f"backend: {detector.backend_name} ({detector.backend_reason})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    h, w = detector.input_hw
    print(
        f"serving {detector.model_name} ({detector.num_classes} classes, {w}x{h}, "
        f"{detector.backend_name}) on http://{settings.host}:{settings.port}/",
        flush=True,
    )
    app = create_app(detector, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning")
    return 0


def _check_port(host: str, port: int) -> None:
    """One line, before the model loads or the service is announced, when ``host:port`` cannot
    be bound (in use, or an address this machine does not have)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise DarkyoloError(f"--host {host}: not an address here ({error.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "already in use; choose another --port"
                if error.errno == errno.EADDRINUSE
                else f"{error.strerror}; check --host"
            )
            raise DarkyoloError(f"cannot serve on {host}:{port}: {reason}") from None
