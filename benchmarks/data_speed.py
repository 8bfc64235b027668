"""Speed of the data side at COCO scale: k-means anchors and COCO JSON -> YOLO txt conversion.

Each is measured beside a plain per-box Python loop doing the same job (the way a short script
would), in the same run on the same data:

* k-means, k=9, on 1,000,000 (w, h) pairs drawn from a COCO-like log-normal mixture:
  ``darkyolo.anchors.kmeans_anchors`` (k-means++, 5 restarts, to convergence), and one Lloyd
  pass (assign every box + move the anchors) for both implementations; the loop's pass runs on
  a 20,000-box subset (it would take minutes on all of them), so compare boxes/s.
* conversion of a generated COCO JSON the size of train2017 (118,287 images, 860,001 boxes, 1%
  crowd, each box with a 4-corner polygon; empty files stand in for the images, hard-linked):
  ``darkyolo.data.convert.convert`` (validation, cleaning, labels, links, lists, ``.data``) and
  the loop (json.load, dict of images, one line per box, one file per image, hard links).

Run: ``python benchmarks/data_speed.py`` (``--scale 0.1`` for a quick, smaller run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from darkyolo.anchors import _closest_two, kmeans_anchors
from darkyolo.data.convert import ConvertOptions, convert

COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def boxes_like_coco(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 2]`` normalised (w, h): a log-normal mixture of small, medium and large boxes."""
    rng = np.random.default_rng(seed)
    parts = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    centre = np.array([[-3.2, -3.0], [-2.0, -1.8], [-0.9, -0.8]])[parts]
    wh = np.exp(centre + rng.normal(0, 0.5, (n, 2)))
    return np.clip(wh, 1e-3, 1.0)


def vector_lloyd_pass(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """One k-means pass the way darkyolo.anchors does it (float32 chunks, then bincount means)."""
    wh32 = wh.astype(np.float32)
    labels, _, _ = _closest_two(wh32, wh32[:, 0] * wh32[:, 1], anchors)
    k = len(anchors)
    counts = np.bincount(labels, minlength=k)[:, None]
    return (
        np.stack([np.bincount(labels, wh[:, 0], k), np.bincount(labels, wh[:, 1], k)], 1) / counts
    )


# ----------------------------------------------------------------------------------------------
# plain-loop baselines
# ----------------------------------------------------------------------------------------------


def loop_lloyd_pass(wh: list[tuple[float, float]], anchors: list[tuple[float, float]]) -> list:
    """One k-means pass, one box at a time: closest anchor by IoU, then the means."""
    k = len(anchors)
    sums = [[0.0, 0.0] for _ in range(k)]
    counts = [0] * k
    for w, h in wh:
        best, best_iou = 0, -1.0
        for j, (aw, ah) in enumerate(anchors):
            inter = min(w, aw) * min(h, ah)
            iou = inter / (w * h + aw * ah - inter)
            if iou > best_iou:
                best, best_iou = j, iou
        sums[best][0] += w
        sums[best][1] += h
        counts[best] += 1
    return [(s[0] / c, s[1] / c) if c else a for s, c, a in zip(sums, counts, anchors)]


def loop_convert(json_path: Path, images_dir: Path, dst: Path) -> int:
    """COCO -> YOLO the way a short script does it, one box at a time; -> boxes written."""
    with open(json_path) as f:
        data = json.load(f)
    images = {im["id"]: im for im in data["images"]}
    index = {c["id"]: i for i, c in enumerate(sorted(data["categories"], key=lambda c: c["id"]))}
    lines: dict[int, list[str]] = {im_id: [] for im_id in images}
    written = 0
    for a in data["annotations"]:
        if a.get("iscrowd"):
            continue
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x + w / 2) / im["width"], (y + h / 2) / im["height"]
        lines[a["image_id"]].append(
            f"{index[a['category_id']]} {cx:.8f} {cy:.8f} {w / im['width']:.8f} {h / im['height']:.8f}\n"
        )
        written += 1
    (dst / "labels").mkdir(parents=True)
    (dst / "images").mkdir(parents=True)
    listing = []
    for im_id, im in images.items():
        stem = os.path.splitext(im["file_name"])[0]
        with open(dst / "labels" / f"{stem}.txt", "w") as f:
            f.write("".join(lines[im_id]))
        os.link(images_dir / im["file_name"], dst / "images" / im["file_name"])
        listing.append(f"images/{im['file_name']}\n")
    (dst / "train.txt").write_text("".join(listing))
    return written


# ----------------------------------------------------------------------------------------------


def make_coco(root: Path, n_images: int, n_boxes: int, seed: int = 0) -> Path:
    """A COCO JSON with ``n_images`` images and ``n_boxes`` annotations, plus empty image files."""
    rng = random.Random(seed)
    images_dir = root / "images" / "train2017"
    images_dir.mkdir(parents=True)
    images = []
    for i in range(1, n_images + 1):
        name = f"{i:012d}.jpg"
        open(images_dir / name, "wb").close()
        width, height = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375), (640, 640)])
        images.append({"id": i, "file_name": name, "width": width, "height": height, "license": 1})
    annotations = []
    for n in range(1, n_boxes + 1):
        im = images[rng.randrange(n_images)]
        w = round(rng.uniform(2, im["width"] * 0.9), 2)
        h = round(rng.uniform(2, im["height"] * 0.9), 2)
        x = round(rng.uniform(0, im["width"] - w), 2)
        y = round(rng.uniform(0, im["height"] - h), 2)
        annotations.append(
            {
                "id": n,
                "image_id": im["id"],
                "category_id": rng.choice(COCO_IDS),
                "bbox": [x, y, w, h],
                "area": round(w * h, 2),
                "iscrowd": 1 if rng.random() < 0.01 else 0,
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            }
        )
    data = {
        "info": {"description": "generated for benchmarks/data_speed.py"},
        "licenses": [{"id": 1, "name": "none"}],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"class{c}", "supercategory": "x"} for c in COCO_IDS],
    }
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances_train2017.json"
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def row(task: str, impl: str, boxes: int, seconds: float) -> str:
    return f"| {task} | {impl} | {boxes:,} | {seconds:.2f} | {boxes / seconds:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes")
    args = parser.parse_args()
    n_boxes = int(1_000_000 * args.scale)
    n_loop = int(20_000 * args.scale)
    coco_images, coco_boxes = int(118_287 * args.scale), int(860_001 * args.scale)
    print(
        f"data_speed: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"python {platform.python_version()}, numpy {np.__version__}, scale {args.scale}"
    )
    lines = ["| task | implementation | boxes | seconds | boxes/s |", "|---|---|---:|---:|---:|"]

    wh = boxes_like_coco(n_boxes)
    start = time.perf_counter()
    anchors, score = kmeans_anchors(wh, 9)
    fit = time.perf_counter() - start
    lines.append(row("k-means k=9, 5 restarts, to convergence", "darkyolo", n_boxes, fit))
    start = time.perf_counter()
    vector_lloyd_pass(wh, anchors * 1.1)
    one_pass = time.perf_counter() - start
    lines.append(row("k-means, one pass (assign + update)", "darkyolo", n_boxes, one_pass))
    subset = [tuple(p) for p in wh[:n_loop].tolist()]
    start = time.perf_counter()
    loop_lloyd_pass(subset, [tuple(a) for a in (anchors * 1.1).tolist()])
    loop_pass = time.perf_counter() - start
    lines.append(row("k-means, one pass (assign + update)", "python loop", n_loop, loop_pass))
    pass_ratio = (n_boxes / one_pass) / (n_loop / loop_pass)

    with tempfile.TemporaryDirectory(prefix="data_speed_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        json_path = make_coco(root / "coco", coco_images, coco_boxes)
        made = time.perf_counter() - start
        size_mb = json_path.stat().st_size / 2**20
        start = time.perf_counter()
        report = convert(
            root / "coco", root / "ours", "coco", "yolo", ConvertOptions(link="hardlink")
        )
        ours = time.perf_counter() - start
        lines.append(row("COCO JSON -> YOLO txt", "darkyolo", report.boxes_read, ours))
        shutil.rmtree(root / "ours")
        start = time.perf_counter()
        written = loop_convert(json_path, root / "coco" / "images" / "train2017", root / "loop")
        loop = time.perf_counter() - start
        lines.append(row("COCO JSON -> YOLO txt", "python loop", written, loop))
        if written != report.boxes_written:
            raise SystemExit(f"box counts differ: loop {written}, darkyolo {report.boxes_written}")

    print("\n".join(lines))
    print(
        f"k-means: mean IoU {score:.4f}; one pass {pass_ratio:.0f}x the loop's boxes/s; "
        f"full fit {fit:.2f} s (target < 5 s)"
    )
    print(
        f"convert: {coco_images:,} images, {coco_boxes:,} boxes ({report.counts.get('crowd', 0):,} "
        f"crowd skipped), JSON {size_mb:.0f} MB (made in {made:.1f} s); "
        f"{ours:.2f} s vs loop {loop:.2f} s = {loop / ours:.2f}x (target < 20 s)"
    )


if __name__ == "__main__":
    main()
