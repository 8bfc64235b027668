"""``darkyolo val --model CFG --weights W --data DATASET``: COCO mAP, per-class AP, PR curves."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "score a model on a .data dataset: COCO mAP@[.5:.95], mAP@.5, per-class AP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="bundled cfg name or .cfg (default: the checkpoint's)")
    parser.add_argument("--weights", required=True, help=".weights or darkyolo checkpoint")
    parser.add_argument("--data", required=True, help=".data file (or a folder holding one)")
    parser.add_argument("--split", choices=("val", "train"), default="val")
    parser.add_argument("--img-size", type=int, help="input side (default: the cfg's width)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--conf", type=float, default=0.001, help="score threshold (0.001)")
    parser.add_argument("--iou", type=float, default=0.6, help="NMS IoU (0.6; Darknet uses 0.45)")
    parser.add_argument("--max-det", type=int, default=300, help="detections per image (300)")
    parser.add_argument("--single-label", action="store_true", help="one class per box")
    voc = parser.add_mutually_exclusive_group()
    voc.add_argument("--voc07", action="store_true", help="also VOC2007 11-point AP at IoU .5")
    voc.add_argument("--voc10", action="store_true", help="also VOC2010+ all-point AP at IoU .5")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--project", default="runs/val", help="output root")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    import torch

    from darkyolo.data.dataset import load_split
    from darkyolo.data.description import load_dataset
    from darkyolo.engine.evaluator import format_table, write_json, write_metrics_json
    from darkyolo.engine.outputs import coco_category_ids, new_run_dir
    from darkyolo.engine.validate import ValSettings, evaluate
    from darkyolo.errors import DataError

    spec = load_dataset(args.data)
    records, report = load_split(spec, args.split)
    for line in report.lines():
        print(line)
    if not records:
        raise DataError(f"the {args.split} split has no usable images", str(spec.path))
    model = load_val_model(args.model, args.weights)
    if model.num_classes != spec.num_classes:
        raise DataError(
            f"the model has {model.num_classes} classes, the dataset {spec.num_classes}",
            str(spec.path),
        )
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))  # fmt: skip
    model = model.to(device)
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    settings = ValSettings(
        img_size=args.img_size or model.config.net.width,
        batch_size=args.batch,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        multi_label=not args.single_label,
        voc_metric="voc07" if args.voc07 else "voc10" if args.voc10 else None,
        workers=args.workers,
    )
    result = evaluate(model, records, spec.names, settings, device, args.progress, amp)
    out = new_run_dir(args.project, args.name, args.exist_ok)
    print(format_table(result))
    write_metrics_json(result, out / "metrics.json")
    write_json(result, out / "predictions.json", coco_category_ids(spec.names))
    if args.plots:
        from darkyolo.viz.plots import plot_pr_curves

        plot_pr_curves(result, spec.names, out / "pr_curve.png")
    print(f"mAP@.5:.95 {result.map:.4f}  mAP@.5 {result.map50:.4f}; results in {out}")
    return 0


def load_val_model(model: str | None, weights: str | Path):
    """The model to score: ``--model`` cfg, or the cfg stored in a darkyolo checkpoint."""
    from darkyolo.darknet.cfg import parse_cfg
    from darkyolo.engine.checkpoint import load_checkpoint
    from darkyolo.errors import ConfigError
    from darkyolo.models.darknet import load_model

    if model is not None:
        return load_model(model, weights)
    path = Path(weights)
    with open(path, "rb") as handle:
        is_checkpoint = handle.read(2) == b"PK"
    if not is_checkpoint:
        raise ConfigError("--model is required with a Darknet .weights file", str(path))
    checkpoint = load_checkpoint(path)
    config = parse_cfg(checkpoint["cfg"], f"{path}:cfg")
    return load_model(config, path)
