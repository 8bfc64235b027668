"""A real ``darkyolo serve`` process on a free loopback port, for the API and browser tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@contextlib.contextmanager
def running_server(folder: Path, *options: str) -> Iterator[str]:
    """Start ``darkyolo serve`` with ``options``, wait until ``/readyz`` answers 200, yield its
    base URL, and stop it. Its output goes to ``folder/serve.log``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "darkyolo", "serve", "--port", str(port), *options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / "serve.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not get ready in 90 s")
            time.sleep(0.2)
        yield url
        assert process.poll() is None, "the server died"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The default model, batches of up to 8 waiting 30 ms."""
    folder = tmp_path_factory.mktemp("serve")
    with running_server(folder, "--max-batch", "8", "--max-wait-ms", "30") as url:
        yield url
