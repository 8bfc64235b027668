"""What the benchmark scripts share: one ``darkyolo`` command run in this process, timed."""

from __future__ import annotations

import time


def darkyolo(argv: list[str]) -> float:
    """``darkyolo argv`` in this process -> seconds (a failure stops the benchmark)."""
    from darkyolo.cli import main

    start = time.perf_counter()
    status = main(argv)
    if status:
        raise SystemExit(f"darkyolo {' '.join(argv)} exited with {status}")
    return time.perf_counter() - start
