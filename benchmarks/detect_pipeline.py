"""Does a folder run at the network's rate? ``darkyolo detect FOLDER``'s loop against the network
alone, with the same backend, in one run.

Run: ``python benchmarks/detect_pipeline.py [--models yolov3-tiny yolov3] [--pictures 64]
[--backend auto] [--batch 1]``. The folder is the bundled sample pictures repeated to
``--pictures`` files (JPEG, 768x576 and similar). For each model:

* network only: the backend on letterboxed pictures already in memory, one call per batch;
* detect: what ``darkyolo detect FOLDER`` does after the model is loaded: read and decode each
  file, letterbox, network, decode and NMS, draw the boxes, write the annotated JPEG.

Both are timed after one warm-up pass, in turns for ``--rounds`` rounds (medians); the ratio is pictures per second of detect over the
network alone (the target: at least 0.9). A trained model's name runs its weights (conf 0.25);
an architecture runs random weights (speed does not depend on them) at conf 0.6, where they
draw few boxes, as a trained model does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from darkyolo.data.images import read_image
from darkyolo.data.letterbox import letterbox
from darkyolo.inference.outputs import ResultWriter
from darkyolo.inference.predictor import Detector
from darkyolo.models.zoo import trained_model

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "darkyolo" / "assets" / "samples"


def make_folder(root: Path, count: int) -> Path:
    pictures = sorted(SAMPLES.glob("*.jpg"))
    folder = root / "pictures"
    folder.mkdir()
    for k in range(count):
        shutil.copy(pictures[k % len(pictures)], folder / f"{k:03d}.jpg")
    return folder


def network_only(detector: Detector, folder: Path, batch: int) -> float:
    """Seconds for the backend alone over the folder's pictures, letterboxed in advance."""
    images = [letterbox(read_image(p), detector.input_hw)[0] for p in sorted(folder.iterdir())]
    batches = [np.stack(images[k : k + batch]) for k in range(0, len(images), batch)]
    detector.backend(batches[0])  # warm-up
    start = time.perf_counter()
    for x in batches:
        detector.backend(x)
    return time.perf_counter() - start


def detect_folder(detector: Detector, folder: Path, out: Path) -> float:
    """Seconds for detect's loop: stream (read, letterbox, network, NMS) and write each result."""
    out.mkdir(parents=True, exist_ok=True)
    writer = ResultWriter(out, detector.names)
    start = time.perf_counter()
    for result in detector.stream([folder], keep_images=True):
        writer.write(result)
    writer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolov3-tiny-coco", "yolov3"])
    parser.add_argument("--pictures", type=int, default=64)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'model':<18}{'backend':<13}{'network img/s':>15}{'detect img/s':>14}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.pictures)
        for name in args.models:
            trained = trained_model(name) is not None
            detector = Detector(
                name, random_weights=not trained, backend=args.backend, img_size=args.size,
                batch_size=args.batch, conf=0.25 if trained else 0.6,
            )  # fmt: skip
            detect_folder(detector, folder, Path(tmp) / f"warm-{name}")  # warm-up pass
            alone_s, full_s = [], []
            for round_ in range(args.rounds):  # in turns: load from elsewhere falls on both
                alone_s.append(network_only(detector, folder, args.batch))
                full_s.append(detect_folder(detector, folder, Path(tmp) / f"out-{name}-{round_}"))
            alone, full = statistics.median(alone_s), statistics.median(full_s)
            rate_alone, rate_full = args.pictures / alone, args.pictures / full
            print(
                f"{name:<18}{detector.backend_name:<13}{rate_alone:>15.1f}{rate_full:>14.1f}"
                f"{rate_full / rate_alone:>8.2f}"
            )


if __name__ == "__main__":
    main()
