"""Load on ``darkyolo serve`` over loopback, beside the in-process ceiling, in one run.

Run: ``python benchmarks/serve_load.py`` (about 4 minutes: 1, 4 and 16 clients for 30 s each, with
batching and without). Options: ``--seconds``, ``--clients``, ``--max-requests`` (per step; every
step stops at whichever comes first), ``--markdown FILE``.

Each client posts the same picture (Darknet's ``dog.jpg``, 768x576 JPEG) again and again and waits
for the answer; the server runs the bundled default model at 416 on the CPU. The in-process ceiling
is ``Detector.predict`` in a loop on the same picture at the same batch size (reading and decoding
included, as the server does). The server's resident memory is read from ``/proc`` at the start and
after 100 warm-up requests at full concurrency (the first full batches allocate their buffers
once: about 170 MB for batches of 8) and at the end. Everything runs on 127.0.0.1, bounded in time
and count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serve.conftest import running_server

PICTURE = Path(str(resources.files("darkyolo") / "assets" / "samples" / "dog.jpg"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_pid(port: int) -> int:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return int(out.stdout.split("pid=")[1].split(",")[0])


async def load(url: str, clients: int, seconds: float, max_requests: int) -> dict[str, float]:
    body = PICTURE.read_bytes()
    latencies: list[float] = []
    batches: list[int] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(session: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop and len(latencies) + errors < max_requests:
            start = time.perf_counter()
            try:
                answer = await session.post(f"{url}/v1/detect", content=body)
            except httpx.HTTPError:
                errors += 1
                continue
            if answer.status_code != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            batches.append(answer.json()["batch_size"])

    began = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": errors,
        "batch": statistics.mean(batches) if batches else float("nan"),
    }


def in_process(batch: int, seconds: float) -> float:
    """Pictures per second of ``Detector.predict`` on the picture, ``batch`` at a time."""
    from darkyolo import Detector

    detector = Detector(batch_size=batch)
    detector.predict([PICTURE] * batch)  # warm-up
    done, stop = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < stop:
        detector.predict([PICTURE] * batch)
        done += batch
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)

    ceiling = {b: in_process(b, min(args.seconds, 15)) for b in sorted({1, args.max_batch})}
    lines = [
        f"command: python benchmarks/serve_load.py {' '.join(argv or sys.argv[1:])}",
        f"in-process ceiling (Detector.predict, same picture): batch 1 {ceiling[1]:.1f} img/s, "
        f"batch {args.max_batch} {ceiling[args.max_batch]:.1f} img/s",
        "",
        "| batching | clients | requests | req/s | vs in-process | p50 ms | p95 ms | p99 ms | errors | mean batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    memory = []
    for label, options in (
        (f"on (max {args.max_batch}, {args.max_wait_ms:g} ms)", ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]),
        ("off", ["--max-batch", "1"]),
    ):  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), *options) as url:
            pid = server_pid(int(url.rsplit(":", 1)[1]))
            loaded_rss = rss_mb(pid)
            # warm-up at full concurrency: the first full batches allocate their buffers once
            asyncio.run(load(url, max(args.clients), args.seconds, 100))
            start_rss, total = rss_mb(pid), 0
            for clients in args.clients:
                r = asyncio.run(load(url, clients, args.seconds, args.max_requests))
                total += r["requests"]
                best = ceiling[args.max_batch if label != "off" else 1]
                lines.append(
                    f"| {label} | {clients} | {r['requests']} | {r['rps']:.1f} | "
                    f"{r['rps'] / best:.2f}x | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} "
                    f"| {r['errors']} | {r['batch']:.2f} |"
                )
                print(lines[-1], flush=True)
            memory.append(
                f"server RSS with batching {label}: {loaded_rss:.0f} MB with the model loaded, "
                f"{start_rss:.0f} MB after 100 warm-up requests at {max(args.clients)} clients, "
                f"{rss_mb(pid):.0f} MB after {total} more requests ({rss_mb(pid) - start_rss:+.0f} MB)"
            )
    lines += ["", *memory]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
