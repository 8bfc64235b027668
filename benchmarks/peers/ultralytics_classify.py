"""The peer of benchmarks/classify_clothing.py: ultralytics' own classifier from scratch
(``yolov8n-cls.yaml``, no pretrained weights), run in its own environment (``.venv-peers``, made
by ``benchmarks/peers/setup.sh``). Prints one JSON line: top-1, top-5 on the val split, seconds."""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--imgsz", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--project", required=True)
    args = parser.parse_args()

    from ultralytics import YOLO

    start = time.perf_counter()
    model = YOLO("yolov8n-cls.yaml")
    model.train(
        data=args.data, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, pretrained=False,
        device="cpu", workers=args.workers, project=args.project, name="yolov8n-cls",
        exist_ok=True, plots=False, amp=False, seed=0, verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    metrics = model.val(data=args.data, imgsz=args.imgsz, batch=args.batch, split="val", plots=False, device="cpu")  # fmt: skip
    print(
        json.dumps({"top1": float(metrics.top1), "top5": float(metrics.top5), "train_s": seconds})
    )


if __name__ == "__main__":
    main()
