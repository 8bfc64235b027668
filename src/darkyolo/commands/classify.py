"""``darkyolo classify train|val|predict``: Darknet classifiers (``darknet19``, ``darknet53``,
the reference network, or any cfg ending in ``[softmax]``) on a class-folder tree or a Darknet
``.data`` list.

``train`` takes the options of ``darkyolo train`` (the same engine: checkpoints, resume, EMA, AMP,
DDP); the detection-only ones are refused. The 448 fine-tune of YOLOv2's "high resolution
classifier" is ``classify train --model darknet19_448 --weights runs/classify/exp/weights/best.pt
--epochs 10``: a new run, so the image count starts at zero as with Darknet's ``-clear``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from darkyolo.errors import OptionError
from darkyolo.training.options import DEFAULT_CLASSIFIER
from darkyolo.values import INPUT_SIDE, POSITIVE_INT

HELP = "train, score or run a Darknet classifier (darknet19, darknet53, the reference network)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from darkyolo.commands import train as train_command

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="train a classifier", description="train a classifier")
    train_command.add_arguments(train, task="classify")
    train.set_defaults(model=DEFAULT_CLASSIFIER, project="runs/classify", run=_train)

    val = sub.add_parser("val", help="top-1/top-5 and the confusion matrix on a split")
    _model_arguments(val)
    val.add_argument("--data", required=True, help="class-folder tree or Darknet .data file")
    val.add_argument("--split", choices=("val", "train"), default="val")
    val.add_argument("--img-size", type=INPUT_SIDE, help="input side (default: the cfg's width)")
    val.add_argument("--batch", type=POSITIVE_INT, default=32, help="pictures per forward pass")
    val.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    val.add_argument("--project", default="runs/classify", help="output root")
    val.add_argument("--name", default="val", help="output folder (val, val2, ...)")
    val.add_argument("--no-plots", dest="plots", action="store_false", help="no confusion PNG")
    val.set_defaults(run=_val)

    predict = sub.add_parser("predict", help="the top classes of pictures, with their names")
    _model_arguments(predict)
    predict.add_argument("source", nargs="+", help="pictures, folders, globs or list files")
    predict.add_argument("--top", type=POSITIVE_INT, default=5, help="classes shown per picture")
    predict.add_argument(
        "--img-size", type=INPUT_SIDE, help="input side (default: the cfg's width)"
    )
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    predict.add_argument("--project", type=Path, default=Path("runs/classify"), help="output root")
    predict.add_argument("--name", default="predict", help="run folder (predict, predict2, ...)")
    predict.add_argument("--exist-ok", action="store_true", help="reuse --name if it exists")
    predict.add_argument("--nosave", action="store_true", help="print only, write no files")
    predict.set_defaults(run=_predict)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="classifier cfg (bundled name or path); default: the cfg in --weights")  # fmt: skip
    parser.add_argument("--weights", required=True, help="checkpoint (.pt) or Darknet .weights")
    parser.add_argument("--names", type=Path, help="class names file (default: the checkpoint's)")


def run(args: argparse.Namespace) -> int:  # pragma: no cover - each action sets its own run
    return args.run(args)


def _train(args: argparse.Namespace) -> int:
    from darkyolo.commands.train import options_from_args, require_data
    from darkyolo.tasks.classification import ClassificationTask
    from darkyolo.training.trainer import Trainer

    require_data(args, "class folders or a .data file")
    trainer = Trainer(options_from_args(args), ClassificationTask())
    try:
        trainer.fit()
    except KeyboardInterrupt:
        raise KeyboardInterrupt(trainer.interrupted_note("darkyolo classify train")) from None
    return 0


def _load(args: argparse.Namespace):  # -> Classifier
    from darkyolo.data.formats.yolo import read_names
    from darkyolo.inference.classifier import Classifier

    names = read_names(args.names) if args.names else None
    classifier = Classifier(args.weights, args.model, names, args.img_size, args.device)
    for note in classifier.notes:
        print(note)
    return classifier


def _val(args: argparse.Namespace) -> int:
    from darkyolo.classify.data import drop_unreadable, load_classification_data
    from darkyolo.classify.evaluate import evaluate_classifier, plot_confusion
    from darkyolo.inference.outputs import new_run_dir

    classifier = _load(args)
    model, names, size, device = (classifier.model, classifier.names, classifier.img_size, classifier.device)  # fmt: skip
    data = load_classification_data(args.data)
    if data.names != names:
        raise OptionError(f"{args.data}: classes {data.names} differ from the model's {names}")
    items = data.val if args.split == "val" else data.train
    if not items:
        raise OptionError(f"{args.data}: the {args.split} split has no pictures")
    items, lines = drop_unreadable(items, "exclude", f"the {args.split} split")
    for line in [*data.notes, *lines]:
        print(line)
    result = evaluate_classifier(model, items, names, size, device, batch_size=args.batch)
    print(result.table())
    out = new_run_dir(args.project, args.name, False)
    result.write_json(out / "metrics.json")
    if args.plots:
        plot_confusion(result, out / "confusion_matrix.png")
    print(f"wrote {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """The top classes of each picture, printed and written as detect writes its results: a run
    folder with ``labels/<stem>.txt`` (a ``probability class`` line per class shown, best first)
    and ``predictions.json``."""
    from darkyolo.data.images import collect_sources, read_image
    from darkyolo.errors import DataError
    from darkyolo.inference.outputs import free_stem, new_run_dir

    sources = collect_sources(args.source)
    if not len(sources):  # before the model loads or a folder is made
        raise OptionError("nothing to classify: " + "; ".join(sources.missing))
    classifier = _load(args)
    run_dir = new_run_dir(args.project, args.name, args.exist_ok, create=False)
    results, failed, stems = [], 0, set()
    for entry in sources.entries:
        path = entry.path
        if entry.kind == "missing":
            print(f"skipped: {entry.message}", file=sys.stderr)
            failed += 1
            continue
        try:
            image = read_image(path)
        except DataError as error:
            print(f"{path}: skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        ranked = [(r.index, r.name, r.p) for r in classifier.top(image, args.top)]
        print(f"{path}: " + ", ".join(f"{100 * p:.1f}% {name}" for _, name, p in ranked))
        results.append(
            {"image": str(path), "top": [{"class": n, "index": i, "p": p} for i, n, p in ranked]}
        )
        if not args.nosave:
            stem = free_stem(Path(path).stem, stems)
            labels = run_dir / "labels"
            labels.mkdir(parents=True, exist_ok=True)
            (labels / f"{stem}.txt").write_text("".join(f"{p:.5f} {n}\n" for _, n, p in ranked))
    if results and not args.nosave:
        (run_dir / "predictions.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"results in {run_dir} (labels/*.txt, predictions.json)")
    if failed:
        print(f"{failed} of {len(sources.entries)} sources could not be read", file=sys.stderr)
    if not results:
        raise DataError("nothing could be read; see the list above")
    return 0
