"""``darkyolo val [--model M] [--weights W] --data DATASET [--split S]``: COCO mAP, per-class AP,
PR curves. The model options mean what they mean for ``detect`` (:mod:`darkyolo.models.zoo`); the
data is a ``.data`` split, an image list or folder, or a COCO JSON (:mod:`darkyolo.data.splits`)."""

from __future__ import annotations

import argparse

from darkyolo.commands.model_args import add_engine_arguments, add_model_arguments
from darkyolo.evaluation.options import ValOptions
from darkyolo.values import INPUT_SIDE, NON_NEGATIVE_INT, POSITIVE_INT, PROBABILITY

HELP = "score a model on labelled pictures: COCO mAP@[.5:.95], mAP@.5, per-class AP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--data",
        required=True,
        help=".data file (or a folder holding one), or a COCO annotation JSON",
    )
    parser.add_argument(
        "--split",
        help="train, val (default) or test of the .data file, or an image list or folder "
        "(labels beside the pictures); not with a COCO JSON",
    )
    parser.add_argument(
        "--bad-images",
        choices=("exclude", "stop"),
        default="exclude",
        help="pictures that cannot be decoded: leave them out, counted and named (default), or "
        "stop; truncated ones are repaired",
    )
    parser.add_argument("--img-size", type=INPUT_SIDE, help="input side (default: the cfg's width)")  # fmt: skip
    parser.add_argument("--batch", type=POSITIVE_INT, default=ValOptions.batch_size)
    parser.add_argument("--conf", type=PROBABILITY, default=ValOptions.conf, help="score threshold")  # fmt: skip
    parser.add_argument("--iou", type=PROBABILITY, default=ValOptions.iou, help="NMS IoU (Darknet: 0.45)")  # fmt: skip
    parser.add_argument(
        "--max-det", type=POSITIVE_INT, default=ValOptions.max_det, help="detections per image"
    )
    parser.add_argument("--single-label", action="store_true", help="one class per box")
    voc = parser.add_mutually_exclusive_group()
    voc.add_argument("--voc07", action="store_true", help="also VOC2007 11-point AP at IoU .5")
    voc.add_argument("--voc10", action="store_true", help="also VOC2010+ all-point AP at IoU .5")
    parser.add_argument("--device", default="auto")
    add_engine_arguments(parser, " or --amp")
    parser.add_argument("--workers", type=NON_NEGATIVE_INT, default=2)
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--project", default="runs/val", help="output root")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    import torch

    from darkyolo.data.splits import open_split
    from darkyolo.device import resolve_device
    from darkyolo.errors import DataError
    from darkyolo.evaluation.reports import format_table, write_json, write_metrics_json
    from darkyolo.evaluation.validate import evaluate
    from darkyolo.inference.backends import ExportedNetwork, exported_backend
    from darkyolo.inference.engines import choose_backend, is_exported
    from darkyolo.inference.outputs import new_run_dir
    from darkyolo.models.zoo import resolve_model

    split = open_split(args.data, args.split, bad_images=args.bad_images)
    for line in split.report.lines():
        print(line)
    exported = next((p for p in (args.model, args.weights) if is_exported(p)), None)
    torch_only = "--amp" if args.amp != "off" else None
    chosen, why = choose_backend(
        args.backend, exported=exported, device=args.device, torch_only=torch_only
    )
    if exported is not None:  # an export, float32 or int8
        model = ExportedNetwork(exported_backend(chosen, exported, args.threads), exported)
        name = exported
    else:
        source = resolve_model(args.model, args.weights, random_weights=args.random_weights)
        for note in source.notes:
            print(note)
        model, name = source.build(), source.name
        if chosen != "torch":
            model = ExportedNetwork(exported_backend(chosen, model, args.threads), name)
        elif args.threads:
            torch.set_num_threads(args.threads)
    print(f"model: {name} ({model.num_classes} classes)")
    print(f"backend: {chosen} ({why})")
    if model.num_classes != len(split.names):
        raise DataError(
            f"the model has {model.num_classes} classes, the dataset {len(split.names)}",
            str(split.source),
        )
    device = resolve_device(args.device)
    model = model.to(device)
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    settings = ValOptions(
        img_size=args.img_size or model.input_size[1],
        batch_size=args.batch,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        multi_label=not args.single_label,
        voc_metric="voc07" if args.voc07 else "voc10" if args.voc10 else None,
        workers=args.workers,
    )
    records = split.records
    result = evaluate(
        model, records, split.names, settings, device, args.progress, amp, skip_unreadable=True
    )
    for note in result.notes:
        print(f"note: {note}")
    out = new_run_dir(args.project, args.name, args.exist_ok)
    print(format_table(result))
    write_metrics_json(result, out / "metrics.json")
    image_ids = [_image_id(records[i]) for i in result.image_ids]
    write_json(result, out / "predictions.json", split.category_ids, image_ids=image_ids)
    if args.plots:
        from darkyolo.viz.plots import plot_pr_curves

        plot_pr_curves(result, split.names, out / "pr_curve.png")
    print(f"mAP@.5:.95 {result.map:.4f}  mAP@.5 {result.map50:.4f}; results in {out}")
    return 0


def _image_id(record) -> int | str:
    """The results JSON's ``image_id``: the COCO id when the labels came from a COCO JSON, else the
    file stem (an int when all digits), as ``darkyolo detect --save-json`` writes it."""
    from darkyolo.inference.outputs import coco_image_id

    return record.image_id if record.image_id is not None else coco_image_id(str(record.image))
