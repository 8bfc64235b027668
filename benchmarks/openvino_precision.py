"""What OpenVINO's CPU plugin runs an ONNX file in by default, against the ``f32`` hint darkyolo
sets: the precision each compiled model reports, and batch-1 latency, interleaved in one run.

Usage: ``darkyolo export --model yolov3 --random-weights --format onnx -o y3.onnx`` then
``python benchmarks/openvino_precision.py y3.onnx [--size 416] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import openvino as ov


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    core = ov.Core()
    print("CPU:", core.get_property("CPU", "FULL_DEVICE_NAME"), core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))  # fmt: skip
    configs = {
        "default (no precision hint)": {"PERFORMANCE_HINT": "LATENCY"},
        "f32 (darkyolo's)": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
    }
    requests = {}
    for name, config in configs.items():
        compiled = core.compile_model(core.read_model(args.onnx), "CPU", config)
        print(f"{name}: runs in {compiled.get_property('INFERENCE_PRECISION_HINT')}")
        requests[name] = compiled.create_infer_request()
    pixels = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(2):  # warm-up
        for request in requests.values():
            request.infer({0: pixels})
    for _ in range(args.rounds):
        for name, request in requests.items():
            start = time.perf_counter()
            request.infer({0: pixels})
            times[name].append((time.perf_counter() - start) * 1000)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} ms")


if __name__ == "__main__":
    main()
