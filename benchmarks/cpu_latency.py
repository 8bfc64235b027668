"""CPU inference speed: darkyolo (PyTorch, ONNX Runtime) beside OpenCV's Darknet importer.

Run: ``python benchmarks/cpu_latency.py`` (about 3 minutes on 2 cores). Options: ``--models``,
``--size``, ``--threads``, ``--rounds``, ``--compile`` (adds torch.compile, which compiles once per
shape), ``--no-bf16`` (drops the opt-in bfloat16 row, which is faster but not exact), ``--no-int8``
(drops the int8 ONNX Runtime row), ``--ablation`` (one model's speed step by step: plain, BN folded,
channels-last, ...), ``--profile CFG`` (ONNX Runtime's per-operator profile of CFG in float32 and
int8, with the integer kernels used), ``--markdown FILE`` (append the tables).

The int8 row is ``darkyolo export --int8``'s model (static QDQ, per-channel int8 kernels, uint8
activations; the heads' last convolutions and the decode in float32), calibrated here on eight
letterboxed random pictures: its speed does not depend on the ranges found.

Every engine gets the same random Darknet ``.weights`` (no pretrained weights offline; speed does
not depend on the values), the same thread count, and the same 768x576 picture. A measurement is
one picture (batch 1) or eight (batch 8) from uint8 pixels to the network's output rows: OpenCV
``blobFromImage(s)`` + ``forward``; darkyolo letterbox + network + decode. NMS is left out of both.
Engines are measured in turns (round-robin), so load from other processes falls on all alike;
the tables give medians and ratios to OpenCV measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from darkyolo.darknet.cfg import resolve_cfg_path
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.data.letterbox import letterbox
from darkyolo.export import onnx_bytes
from darkyolo.inference.backends import OnnxBackend, OpenVinoBackend, TorchBackend
from darkyolo.inference.optimize import inference_copy
from darkyolo.models.io import load_model, save_darknet_weights

Runner = Callable[[list[np.ndarray]], object]
#: the row of the opt-in bfloat16 mode (not exact: scores move by about 1e-2)
BF16 = "darkyolo torch bf16 (approx.)"
#: the row of the int8 export (approximate by design; accuracy in docs/inference.md)
INT8 = "darkyolo onnxruntime int8"
#: OpenVINO's rows: darkyolo's backend in float32 and half, darkyolo's int8 IR export (NNCF, the
#: heads' last convolutions and the decode kept float), NNCF int8 with its defaults on the same
#: float32 ONNX and pictures (what a user would build by hand), and OpenVINO on the int8 QDQ ONNX
OPENVINO = "darkyolo openvino"
OPENVINO_HALF = "darkyolo openvino half (bf16/f16 where the CPU has it)"
OPENVINO_INT8 = "darkyolo openvino int8 (export --format openvino --int8)"
OPENVINO_BY_HAND = "OpenVINO + NNCF int8 by hand (defaults)"
OPENVINO_QDQ = "OpenVINO on darkyolo's int8 QDQ ONNX"
APPROXIMATE_OPENVINO = (OPENVINO_HALF, OPENVINO_INT8, OPENVINO_BY_HAND, OPENVINO_QDQ)


def random_weights(cfg: str, path: Path, seed: int = 0) -> None:
    """Write seeded random kernels and batch-norm statistics for ``cfg`` as a .weights file."""
    save_darknet_weights(load_model(cfg).randomize_(seed), path)


def gflops(cfg: str, size: int) -> float:
    """Convolution FLOPs of one picture (2 per multiply-add), in G."""
    model = load_model(cfg)
    return sum(s.flops for s in infer_shapes(model.config, size, size)) / 1e9


def matmul_peak(threads: int) -> dict[str, float]:
    """Single-precision GFLOP/s of large dense products: ``torch.mm`` and ONNX Runtime ``MatMul``
    (n = 4096), and a oneDNN 3x3 convolution (512 -> 512 channels on 104x104, a GEMM in disguise)."""
    n = 4096
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    peaks = {}
    best = min(_time(lambda: a @ b, 1, 5))
    peaks["torch.mm"] = 2 * n**3 / best / 1e9
    x = torch.randn(1, 512, 104, 104).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 512, 3, 3)
    with torch.inference_mode():
        best = min(_time(lambda: torch.nn.functional.conv2d(x, w, padding=1), 2, 5))
    peaks["oneDNN conv 3x3"] = 2 * 512 * 512 * 9 * 104 * 104 / best / 1e9
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        spec = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "AB"]
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["A", "B"], ["C"])],
            "mm",
            spec,
            [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(proto.SerializeToString(), options)
        feeds = {"A": a.numpy(), "B": b.numpy()}
        best = min(_time(lambda: session.run(None, feeds), 1, 5))
        peaks["onnxruntime MatMul"] = 2 * n**3 / best / 1e9
    except ImportError:
        pass
    return peaks


def _time(fn: Callable[[], object], warmup: int, reps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def opencv_runner(cfg: str, weights: Path, size: int) -> Runner:
    net = cv2.dnn.readNetFromDarknet(str(resolve_cfg_path(cfg)), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    outputs = net.getUnconnectedOutLayersNames()

    def run(images: list[np.ndarray]) -> object:
        blob = cv2.dnn.blobFromImages(images, 1 / 255, (size, size), swapRB=True, crop=False)
        net.setInput(blob)
        return net.forward(outputs)

    return run


def darkyolo_runner(backend: TorchBackend | OnnxBackend | OpenVinoBackend, size: int) -> Runner:
    def run(images: list[np.ndarray]) -> object:
        rgb = [image[:, :, ::-1] for image in images]  # the same BGR pixels OpenCV gets
        batch = np.stack([letterbox(image, (size, size))[0] for image in rgb])
        return backend(batch)

    return run


def measure(runners: dict[str, Runner], images: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median seconds per call for each runner, measured in turns after one warm-up call each."""
    for run in runners.values():
        run(images)
        run(images)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(images)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def calibration_pictures(size: int) -> np.ndarray:
    """Eight letterboxed random pictures: the int8 rows' calibration (speed does not depend on the
    ranges found)."""
    rng = np.random.default_rng(1)
    return np.stack(
        [
            letterbox(rng.integers(0, 256, (576, 768, 3), dtype=np.uint8), (size, size))[0]
            for _ in range(8)
        ]
    )


def int8_bytes(model, size: int) -> bytes:
    """``darkyolo export --int8``'s model for ``model``, calibrated on random pictures."""
    import contextlib
    import io
    import logging

    import onnx

    from darkyolo.quantize import float_nodes, head_conv_positions, quantize_onnx

    fp32 = onnx_bytes(model, (size, size))
    keep = float_nodes(onnx.load_from_string(fp32), head_conv_positions(model))
    logging.getLogger().setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        return quantize_onnx(fp32, calibration_pictures(size), keep.names)


def openvino_backends(model, size: int, threads: int, tmp: Path) -> dict[str, OpenVinoBackend]:
    """The OpenVINO rows (see :data:`OPENVINO`), each an IR written to ``tmp`` and read back."""
    import nncf
    import onnx

    from darkyolo.openvino_ir import ir_from_onnx, quantize_ir, save_ir
    from darkyolo.quantize import float_nodes, head_conv_positions

    fp32 = onnx_bytes(model, (size, size))
    pictures = calibration_pictures(size)
    keep = float_nodes(onnx.load_from_string(fp32), head_conv_positions(model))
    batches = [np.ascontiguousarray(p[None].transpose(0, 3, 1, 2)) for p in pictures]
    irs = {
        OPENVINO: save_ir(ir_from_onnx(fp32), tmp / "fp32.xml"),
        OPENVINO_HALF: save_ir(ir_from_onnx(fp32), tmp / "half.xml", half=True),
        OPENVINO_INT8: save_ir(
            quantize_ir(ir_from_onnx(fp32), pictures, keep.names), tmp / "int8.xml"
        ),
        OPENVINO_BY_HAND: save_ir(
            nncf.quantize(ir_from_onnx(fp32), nncf.Dataset(batches), subset_size=len(batches)),
            tmp / "by-hand.xml",
        ),
    }
    found = {name: OpenVinoBackend(path, threads) for name, path in irs.items()}
    found[OPENVINO_QDQ] = OpenVinoBackend(int8_bytes(model, size), threads)
    return found


def build_runners(
    cfg: str,
    weights: Path,
    size: int,
    threads: int,
    compile: bool,
    bf16: bool,
    int8: bool = True,
    openvino: bool = True,
) -> tuple[dict[str, Runner], dict[str, float]]:
    """OpenCV and darkyolo runners for one model; also the seconds each took to set up."""
    setup: dict[str, float] = {}
    runners: dict[str, Runner] = {}
    start = time.perf_counter()
    runners["OpenCV"] = opencv_runner(cfg, weights, size)
    setup["OpenCV"] = time.perf_counter() - start
    model = load_model(cfg, weights)
    model.set_input_size(size, size)
    start = time.perf_counter()
    runners["darkyolo torch"] = darkyolo_runner(TorchBackend(model), size)
    setup["darkyolo torch"] = time.perf_counter() - start
    start = time.perf_counter()
    runners["darkyolo onnxruntime"] = darkyolo_runner(OnnxBackend(onnx_bytes(model), threads), size)
    setup["darkyolo onnxruntime"] = time.perf_counter() - start
    if int8:
        start = time.perf_counter()
        runners[INT8] = darkyolo_runner(OnnxBackend(int8_bytes(model, size), threads), size)
        setup[INT8] = time.perf_counter() - start
    if openvino:
        start = time.perf_counter()
        for name, backend in openvino_backends(model, size, threads, weights.parent).items():
            runners[name] = darkyolo_runner(backend, size)
        setup[OPENVINO] = time.perf_counter() - start
    if bf16:
        start = time.perf_counter()
        runners[BF16] = darkyolo_runner(TorchBackend(model, bf16=True), size)
        setup[BF16] = time.perf_counter() - start
    if compile:
        start = time.perf_counter()
        backend = TorchBackend(model, compile=True, batch_size=1)
        run = darkyolo_runner(backend, size)
        run([np.zeros((576, 768, 3), np.uint8)])  # compile now, not inside the timing
        runners["darkyolo torch.compile"] = run
        setup["darkyolo torch.compile"] = time.perf_counter() - start
    return runners, setup


def ablation(
    cfg: str, weights: Path, size: int, threads: int, rounds: int, batch: int = 1
) -> list[str]:
    """Network latency of one model, one speed step at a time (no pre-processing)."""
    model = load_model(cfg, weights)
    x = torch.rand(batch, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    steps: dict[str, Callable[[], object]] = {}
    steps["plain eval, no_grad"] = lambda: _no_grad(model, x)
    steps["+ inference_mode"] = lambda: _inference(model, x)
    fused = copy.deepcopy(model).fuse()
    steps["+ BN folded"] = lambda: _inference(fused, x)
    rewritten = inference_copy(model)
    steps["+ in-place leaky (inference_copy)"] = lambda: _inference(rewritten, x)
    cl = inference_copy(model).to(memory_format=torch.channels_last)
    steps["+ channels-last"] = lambda: _inference(cl, x_cl)
    start = time.perf_counter()
    compiled = torch.compile(cl, options={"freezing": True})
    _inference(compiled, x_cl)
    compile_s = time.perf_counter() - start
    steps[f"+ torch.compile (freezing; {compile_s:.0f} s to compile)"] = lambda: _inference(
        compiled, x_cl
    )
    session = OnnxBackend(onnx_bytes(model), threads)
    x_hwc = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    steps["ONNX Runtime (all graph optimisations)"] = lambda: session(x_hwc)
    bf16 = TorchBackend(model, bf16=True)
    steps["torch bf16 convolutions (approx.)"] = lambda: bf16(x_hwc)
    medians = measure({k: (lambda _images, f=f: f()) for k, f in steps.items()}, [], rounds)
    first = next(iter(medians.values()))
    lines = [
        f"### Speed steps: {cfg} at {size}, batch {batch}, network only ({threads} threads)",
        "",
        "| step | median ms per batch | vs plain |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v * 1000:.1f} | {v / first:.2f}x |" for k, v in medians.items()]
    return lines


def _no_grad(model: torch.nn.Module, x: torch.Tensor) -> object:
    with torch.no_grad():
        return model(x)


def _inference(model: Callable[[torch.Tensor], object], x: torch.Tensor) -> object:
    with torch.inference_mode():
        return model(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov2", "yolov3"])
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15, help="timed calls per engine, batch 1")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batch-rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--no-bf16", action="store_true", help="leave out the (inexact) bfloat16 torch mode"
    )
    parser.add_argument("--no-int8", action="store_true", help="leave out the int8 row")
    parser.add_argument("--no-openvino", action="store_true", help="leave out OpenVINO's rows")
    parser.add_argument(
        "--profile", metavar="CFG", help="only ONNX Runtime's operator profile, fp32 and int8"
    )
    parser.add_argument("--ablation", metavar="CFG", help="only the step-by-step table for CFG")
    parser.add_argument("--ablation-batch", type=int, default=1, help="batch for --ablation")
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (576, 768, 3), dtype=np.uint8)
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads; "
        f"torch {torch.__version__}, OpenCV {cv2.__version__}"
        + _ort_version()
        + f"; command: python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}",
        "",
    ]
    load_before = _load()
    peaks = matmul_peak(args.threads)
    peak = max(peaks.values())
    lines.append(
        "Single-precision peak (the best of these is the 100% below): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
    )
    lines.append("")

    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            lines += ort_profile(args.profile, args.size, args.threads, args.batch, Path(tmp))
            return _finish(lines, args.markdown)
        if args.ablation:
            weights = Path(tmp) / f"{args.ablation}.weights"
            random_weights(args.ablation, weights)
            lines += ablation(
                args.ablation, weights, args.size, args.threads, args.rounds, args.ablation_batch
            )
            return _finish(lines, args.markdown)
        table = [
            f"| model | engine | batch 1 median ms | vs OpenCV | GFLOP/s | % of peak "
            f"| batch {args.batch} img/s | vs OpenCV | setup s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for cfg in args.models:
            weights = Path(tmp) / f"{cfg}.weights"
            random_weights(cfg, weights)
            work = gflops(cfg, args.size)
            runners, setup = build_runners(
                cfg, weights, args.size, args.threads, args.compile, not args.no_bf16,
                not args.no_int8, not args.no_openvino and _has_openvino(),
            )  # fmt: skip
            single = measure(runners, [picture], args.rounds)
            batch_runners = {k: v for k, v in runners.items() if "compile" not in k}
            many = measure(batch_runners, [picture] * args.batch, args.batch_rounds)
            for name in runners:
                rate = args.batch / many[name] if name in many else float("nan")
                base_rate = args.batch / many["OpenCV"]
                # the peak is single precision: a % of it means nothing for bf16 and int8
                exact = name not in (BF16, INT8, *APPROXIMATE_OPENVINO)
                share = f"{100 * work / single[name] / peak:.0f}%" if exact else "-"
                table.append(
                    f"| {cfg} | {name} | {single[name] * 1000:.1f} "
                    f"| {single[name] / single['OpenCV']:.2f}x | {work / single[name]:.0f} "
                    f"| {share} | {rate:.1f} "
                    f"| {rate / base_rate:.2f}x | {setup.get(name, setup.get(OPENVINO, 0.0)):.1f} |"
                )
            print("\n".join(table[-len(runners) :]), flush=True)
        lines += table
    lines += [
        "",
        "Ratios: latency ratio < 1 and throughput ratio > 1 mean darkyolo is faster. GFLOP/s counts "
        "the convolutions only (2 per multiply-add) and includes pre-processing time. The bf16 row "
        "(`--bf16`) runs the convolutions in bfloat16: not exact (scores move by about 1e-2), shown "
        "for what it buys on CPUs with AVX512-BF16; the int8 row runs `darkyolo export --int8`'s "
        "model (not exact by design: see docs/inference.md for its accuracy); every other engine "
        "computes in float32.",
        f"CPU integer-dot-product flags: {cpu_int8_flags()}.",
    ]
    lines.append(
        f"1-minute load average before {load_before}, after {_load()} (other processes on the "
        "cores make every engine slower, PyTorch's OpenMP threads most of all; compare runs with "
        "a load well under 1)."
    )
    return _finish(lines, args.markdown)


def cpu_int8_flags() -> str:
    """The flags that decide which int8 kernels ONNX Runtime's MLAS picks on x86."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def ort_profile(cfg: str, size: int, threads: int, batch: int, tmp: Path) -> list[str]:
    """ONNX Runtime's own profile of ``cfg`` in float32 and int8: time per operator kind."""
    import json

    import onnxruntime as ort

    model = load_model(cfg).randomize_(0)
    model.set_input_size(size, size)
    graphs = {"float32": onnx_bytes(model), "int8": int8_bytes(model, size)}
    x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    lines = [f"ONNX Runtime profile of {cfg} at {size}, batch {batch}, {threads} threads:", ""]
    lines.append("| graph | operator | ms per call | share |")
    lines.append("|---|---|---:|---:|")
    for name, graph in graphs.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = str(tmp / name)
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        for _ in range(2):
            session.run(None, {"images": x})
        reps = 5
        for _ in range(reps):
            session.run(None, {"images": x})
        events = json.loads(Path(session.end_profiling()).read_text())
        per_op: dict[str, float] = {}
        for event in events:
            args = event.get("args", {})
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                op = args.get("op_name", "?")
                per_op[op] = per_op.get(op, 0.0) + event["dur"] / 1000
        total = sum(per_op.values())
        for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:6]:
            share = 100 * ms / total
            lines.append(f"| {name} | {op} | {ms / (reps + 2):.1f} | {share:.0f}% |")
    lines += ["", f"CPU: {cpu_int8_flags()}"]
    return lines


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # not on every platform
        return "n/a"


def _ort_version() -> str:
    try:
        import onnxruntime

        return f", ONNX Runtime {onnxruntime.__version__}"
    except ImportError:
        return ""


def _finish(lines: list[str], markdown: Path | None) -> int:
    text = "\n".join(lines)
    print(text)
    if markdown:
        with open(markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n\n")
    return 0


def _has_openvino() -> bool:
    from darkyolo.extras import missing_modules

    return not missing_modules(("openvino", "nncf"))


if __name__ == "__main__":
    raise SystemExit(main())
