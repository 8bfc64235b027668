"""The detection peer of benchmarks/train_recipes.py: ultralytics' ``yolov3-tiny.yaml`` from scratch
(the tiny backbone with ultralytics' v8 head and trainer), run in its own environment
(``.venv-peers``, made by ``benchmarks/peers/setup.sh``).

It reads a Darknet ``.data`` file (``train=``, ``valid=`` lists of pictures beside ``labels/``
folders, ``names=``), trains, then predicts every picture of the ``--score`` list (conf 0.001, at
most 300 boxes, ultralytics' own NMS at IoU 0.7 as its ``val`` does) and writes them as JSON
(original-pixel xyxy boxes, scores, labels per picture), so that darkyolo scores both with the same
pycocotools code. Prints one JSON line: ``train_s`` and the predictions file.

``--last`` validates only after the last epoch and predicts with the last weights (as darkyolo's
final runs are scored), so that the ``--score`` list never picks an epoch; by default ultralytics
validates every epoch on it and predicts with its best. ``--resume`` continues an interrupted run
from its ``last.pt`` (a run longer than one sitting); ``train_s`` then counts this sitting only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def read_data(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def absolute_list(listing: Path, out: Path) -> Path:
    """A picture list with absolute paths (ultralytics resolves only ``./`` entries itself).
    Links are kept, not followed: ultralytics finds a picture's labels from its listed path, and
    a suite set that links another's pictures (``bccd-wbc``) has labels of its own."""
    lines = [
        os.path.abspath(listing.parent / line.strip())
        for line in listing.read_text().splitlines()
        if line.strip()
    ]
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="Darknet .data file")
    parser.add_argument("--score", default="valid", help="the .data key whose pictures to predict")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--last", action="store_true", help="no per-epoch val; the last weights")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    parser.add_argument("--project", type=Path, required=True)
    args = parser.parse_args()

    from ultralytics import YOLO

    args.project.mkdir(parents=True, exist_ok=True)
    data = read_data(args.data)
    root = args.data.parent
    names = [n for n in (root / data["names"]).read_text().splitlines() if n.strip()]
    train = absolute_list(root / data["train"], args.project / "train.txt")
    score = absolute_list(root / data[args.score], args.project / "score.txt")
    yaml = args.project / "data.yaml"
    yaml.write_text(
        f"path: {root.resolve()}\ntrain: {train}\nval: {score}\n"
        + "names:\n"
        + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names))
    )
    weights = args.project / "yolov3-tiny" / "weights"
    start = time.perf_counter()
    if args.resume:
        YOLO(str(weights / "last.pt")).train(resume=True)
    else:
        YOLO("yolov3-tiny.yaml").train(
            data=str(yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
            pretrained=False, device="cpu", workers=args.workers, project=str(args.project),
            name="yolov3-tiny", exist_ok=True, plots=False, amp=False, seed=0, verbose=False,
            val=not args.last,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    best = YOLO(str(weights / ("last.pt" if args.last else "best.pt")))
    predictions = {}
    for picture in score.read_text().split():
        result = best.predict(
            picture, imgsz=args.imgsz, conf=0.001, iou=0.7, max_det=300, device="cpu",
            verbose=False,
        )[0]  # fmt: skip
        predictions[str(Path(picture).resolve())] = {  # the scorer's key: links followed
            "boxes": result.boxes.xyxy.tolist(),
            "scores": result.boxes.conf.tolist(),
            "labels": [int(c) for c in result.boxes.cls.tolist()],
        }
    out = args.project / "predictions.json"
    out.write_text(json.dumps(predictions))
    print(json.dumps({"train_s": seconds, "predictions": str(out)}))


if __name__ == "__main__":
    main()
