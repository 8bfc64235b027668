"""A detector started from a classifier's prefix against the same detector from scratch, on BCCD
(train 205 / val 87, the honest split; test is not touched). Same recipe, epochs and size for
every arm; only ``--weights`` differs:

* ``scratch``: yolov3-tiny from Darknet's initialisation;
* ``bccd-crops``: Darknet's reference network (whose layers 0-12 are yolov3-tiny's) trained on
  crops of BCCD's own training boxes (``darkyolo convert ... --to crops``), its ``.conv.13``;
* ``clothing``: the same network trained on ../shared/data/clothing (the reference run of
  ``benchmarks/classify_clothing.py``, or one made here), its ``.conv.13``.

Prints mAP@.5 and mAP@[.5:.95] on val (pycocotools, conf 0.001; the best epoch) per arm and
detector seed, whichever way they fall. Usage::

    python benchmarks/prefix_detector.py --epochs 10 --img-size 320 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli_runner import darkyolo
from suite import voc_set

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--img-size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--classifier-epochs", type=int, default=15)
    parser.add_argument("--crop-size", type=int, default=96, help="classifier input for crops")
    parser.add_argument("--clothing-run", type=Path, help="a reference-network run on clothing")
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-prefix")
    parser.add_argument("--arms", default="scratch,bccd-crops,clothing")
    parser.add_argument("--seeds", type=lambda t: [int(v) for v in t.split(",")], default=[0, 1, 2], help="detector seeds (runs already done are read, not repeated)")  # fmt: skip
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    arms = args.arms.split(",")
    data = voc_set("bccd", out) / "bccd-split.data"
    seconds: dict[str, float] = {}
    prefixes: dict[str, Path | None] = {"scratch": None}

    if "bccd-crops" in arms:
        crops = out / "bccd-crops"
        if not crops.is_dir():
            darkyolo(["convert", str(data), str(crops), "--to", "crops"])
        if not (out / "crops-classifier" / "weights" / "best.pt").is_file():
            argv = ["classify", "train", "--model", "darknet", "--data", str(crops), "--epochs", str(args.classifier_epochs), "--img-size", str(args.crop_size), "--batch", "32", "--amp", args.amp, "--project", str(out), "--name", "crops-classifier", "--exist-ok", "--no-progress"]  # fmt: skip
            seconds["bccd-crops classifier"] = darkyolo(argv)
        prefix = out / "bccd-crops.conv.13"
        darkyolo(["export", "--weights", str(out / "crops-classifier" / "weights" / "best.pt"), "--prefix", "13", "-o", str(prefix)])  # fmt: skip
        prefixes["bccd-crops"] = prefix
    if "clothing" in arms:
        run = args.clothing_run or ROOT / "runs" / "bench-classify" / "darknet-224"
        if not (run / "weights" / "best.pt").is_file():
            argv = ["classify", "train", "--model", "darknet", "--data", str(SHARED / "clothing"), "--epochs", str(args.classifier_epochs), "--img-size", "224", "--batch", "32", "--amp", args.amp, "--project", str(out), "--name", "clothing-classifier", "--exist-ok", "--no-progress"]  # fmt: skip
            seconds["clothing classifier"] = darkyolo(argv)
            run = out / "clothing-classifier"
        prefix = out / "clothing.conv.13"
        darkyolo(["export", "--weights", str(run / "weights" / "best.pt"), "--prefix", "13", "-o", str(prefix)])  # fmt: skip
        prefixes["clothing"] = prefix

    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    for seed in args.seeds:
        for arm in arms:
            name = f"det-{arm}-s{seed}"
            if not (out / name / "metrics.json").is_file():
                argv = ["train", "--model", "yolov3-tiny", "--data", str(data), "--epochs", str(args.epochs), "--img-size", str(args.img_size), "--batch", str(args.batch), "--amp", args.amp, "--seed", str(seed), "--project", str(out), "--name", name, "--exist-ok", "--no-progress", "--no-plots"]  # fmt: skip
                if prefixes.get(arm) is not None:
                    argv += ["--weights", str(prefixes[arm])]
                seconds[f"detector {arm} seed {seed}"] = darkyolo(argv)
            metrics = json.loads((out / name / "metrics.json").read_text())
            results[arm].append({"map50": metrics["map50"], "map": metrics["map"]})
            print(f"== {arm} seed {seed}: mAP@.5 {metrics['map50']:.4f} mAP@[.5:.95] {metrics['map']:.4f}", flush=True)  # fmt: skip

    print(f"\nBCCD val, yolov3-tiny, {args.epochs} epochs at {args.img_size}, batch {args.batch}, seeds {args.seeds} (best epoch on val):")  # fmt: skip
    print(f"{'start':12} {'mAP@.5 each seed':>28} {'mean':>7} {'mAP@.5:.95 each seed':>28} {'mean':>7}")  # fmt: skip
    for arm, runs in results.items():
        m50, m = [r["map50"] for r in runs], [r["map"] for r in runs]
        print(f"{arm:12} {' '.join(f'{v:.3f}' for v in m50):>28} {sum(m50) / len(m50):7.3f} {' '.join(f'{v:.3f}' for v in m):>28} {sum(m) / len(m):7.3f}")  # fmt: skip
    for name, value in seconds.items():
        print(f"{name}: {value:.0f} s")
    (out / "summary.json").write_text(
        json.dumps({"results": results, "seconds": seconds}, indent=2)
    )


if __name__ == "__main__":
    sys.exit(main())
