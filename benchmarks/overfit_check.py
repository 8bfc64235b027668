"""Overfitting check: yolov3-tiny (classes adapted to 3) learns 8 BCCD pictures by heart.

Trains from scratch with ``darkyolo train`` on 8 BCCD pictures and validates on the same 8; a
healthy loss, assignment and trainer reach mAP@.5 above 0.9. Prints the best mAP, the epoch it
came at and the wall time.

    python benchmarks/overfit_check.py                    # 416, batch 8, no augmentation
    nohup python benchmarks/overfit_check.py > overfit.log 2>&1 &
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT.parent / "shared" / "data" / "bccd"
NAMES = "Platelets\nRBC\nWBC\n"


def make_dataset(root: Path, count: int) -> Path:
    """The first ``count`` BCCD pictures as both train and valid split -> .data file."""
    from darkyolo.data.convert import ConvertOptions, convert

    stems = sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))[:count]
    voc = root / "voc"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True)
    for stem in stems:
        (voc / "Annotations" / f"{stem}.xml").symlink_to((BCCD / "Annotations" / f"{stem}.xml").resolve())  # fmt: skip
        (voc / "JPEGImages" / f"{stem}.jpg").symlink_to((BCCD / "JPEGImages" / f"{stem}.jpg").resolve())  # fmt: skip
    (voc / "ImageSets" / "Main" / "train.txt").write_text("\n".join(stems) + "\n")
    names = root / "bccd.names"
    names.write_text(NAMES)
    out = root / "yolo"
    convert(voc, out, "voc", "yolo", ConvertOptions(name="bccd8", names_file=names, link="symlink"))
    data = out / "bccd8.data"
    text = data.read_text()
    data.write_text(text + "valid=train.txt\n")
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--eval-interval", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.9, help="mAP@.5 to reach")
    parser.add_argument("--amp", default="off")
    parser.add_argument("--init", default="darknet", choices=("darknet", "torch"))
    parser.add_argument("--obj-prior", type=float, default=0.01, help="0 for none")
    parser.add_argument("--keep", type=Path, help="write the run here instead of a temp folder")
    args = parser.parse_args()
    if not BCCD.is_dir():
        print(f"skipped: {BCCD} not found")
        return 0
    from darkyolo.training.options import TrainOptions
    from darkyolo.training.trainer import Trainer

    print(f"command: python {' '.join(sys.argv)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = make_dataset(tmp, args.images)
        options = TrainOptions(
            model="yolov3-tiny",
            data=str(data),
            epochs=args.epochs,
            batch=args.images,
            subdivisions=1,
            img_size=args.img_size,
            multi_scale=False,
            augment=False,
            lr=args.lr,
            warmup_epochs=10,
            workers=0,
            cache=True,
            eval_interval=args.eval_interval,
            amp=args.amp,
            init=args.init,
            obj_prior=args.obj_prior or None,
            project=str(args.keep or tmp / "runs"),
            name="overfit",
            progress=False,
        )
        start = time.perf_counter()
        result = Trainer(options, log=lambda m: print(m, flush=True)).fit()
        elapsed = time.perf_counter() - start
        with open(result.run_dir / "results.csv", newline="") as handle:
            scores = [float(row["map50"]) for row in csv.DictReader(handle) if row["map50"]]
        best50 = max(scores, default=0.0)
        verdict = "PASS" if best50 > args.target else "FAIL"
        print(
            f"{verdict}: best mAP@.5 {best50:.3f} (target > {args.target}) on {args.images} "
            f"pictures at {args.img_size}, {result.epochs} epochs ({result.updates} updates) in "
            f"{elapsed / 60:.1f} min"
        )
        return 0 if best50 > args.target else 1


if __name__ == "__main__":
    raise SystemExit(main())
