"""``darkyolo detect SOURCE... [--model NAME_OR_CFG] [--weights FILE]``: boxes on pictures and videos.

With no model options it runs the bundled COCO model (``yolov3-tiny-coco``); see
:mod:`darkyolo.models.zoo` for how ``--model`` and ``--weights`` combine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from darkyolo.commands.model_args import add_engine_arguments, add_model_arguments
from darkyolo.errors import DarkyoloError
from darkyolo.values import NON_NEGATIVE_INT, POSITIVE_INT, PROBABILITY, add_input_size

if TYPE_CHECKING:
    from darkyolo.data.images import SourceList

HELP = "detect objects in pictures, folders, globs, image lists or videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="picture, folder, glob ('pics/*.jpg'), video file, or .txt list of pictures",
    )
    add_model_arguments(parser)
    add_input_size(
        parser, "network input: one side, or height and width (multiples of 32; default: the cfg's)"
    )
    parser.add_argument("--conf", type=PROBABILITY, default=0.25, help="score threshold (default 0.25)")  # fmt: skip
    parser.add_argument("--iou", type=PROBABILITY, default=0.45, help="NMS IoU threshold (default 0.45)")  # fmt: skip
    parser.add_argument("--max-det", type=POSITIVE_INT, default=300, help="detections per picture at most")  # fmt: skip
    parser.add_argument("--classes", type=NON_NEGATIVE_INT, nargs="+", help="keep only these class indices")  # fmt: skip
    parser.add_argument(
        "--multi-label",
        action="store_true",
        help="a box for every class above --conf, not just the best one (as darkyolo val scores)",
    )
    parser.add_argument("--batch", type=POSITIVE_INT, default=1, help="pictures per network call")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    add_engine_arguments(parser, ", --compile or --bf16")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the network (pays off on long runs)"
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="torch convolutions in bfloat16: ~2x faster on CPUs with AVX512-BF16/AMX, not exact",
    )
    parser.add_argument("--names", type=Path, help=".names file (default: COCO/VOC by count)")
    parser.add_argument("--project", type=Path, default=Path("runs/detect"), help="output root")
    parser.add_argument("--name", default="exp", help="run folder name (default exp, exp2, ...)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse --name if it exists")
    parser.add_argument("--save-txt", action="store_true", help="YOLO txt with a confidence column")
    parser.add_argument("--save-json", action="store_true", help="COCO results-format JSON")
    parser.add_argument(
        "--image-ids",
        type=Path,
        metavar="JSON",
        help="COCO annotation JSON whose image ids --save-json writes (matched by file name)",
    )
    parser.add_argument("--nosave", action="store_true", help="do not write annotated pictures")
    parser.add_argument("--line-width", type=POSITIVE_INT, help="box line width in pixels (default: auto)")  # fmt: skip
    parser.add_argument("--vid-stride", type=POSITIVE_INT, default=1, help="use every Nth video frame")  # fmt: skip
    parser.add_argument("--recursive", action="store_true", help="look in sub-folders too")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per picture")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from darkyolo.data.images import collect_sources
    from darkyolo.errors import DarkyoloError
    from darkyolo.inference.outputs import ResultWriter, coco_image_ids, new_run_dir
    from darkyolo.inference.predictor import Detector, ReadFailure

    found = collect_sources(args.sources, recursive=args.recursive)
    if not len(found):  # before the model loads or a folder is made
        raise DarkyoloError("nothing to detect on: " + "; ".join(found.missing))
    image_ids = coco_image_ids(args.image_ids) if args.image_ids else None
    detector = Detector(
        args.model,
        args.weights,
        random_weights=args.random_weights,
        backend=args.backend,
        img_size=args.img_size,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        classes=args.classes,
        multi_label=args.multi_label,
        names=args.names,
        device=args.device,
        threads=args.threads,
        compile=args.compile,
        bf16=args.bf16,
        batch_size=args.batch,
    )
    for note in detector.notes:
        print(note)
    print(f"model: {detector.model_name} ({detector.num_classes} classes)")
    print(f"backend: {detector.backend_name} ({detector.backend_reason})")
    expected = _expected_count(found, args.vid_stride)
    saving = not args.nosave or args.save_txt or args.save_json
    # the folder is named now and made by the first result written: a run that writes nothing
    # (--nosave, or no picture could be read) leaves none behind
    run_dir = new_run_dir(args.project, args.name, args.exist_ok, create=False)
    writer = ResultWriter(
        run_dir,
        detector.names,
        save_images=not args.nosave,
        save_txt=args.save_txt,
        save_json=args.save_json,
        line_width=args.line_width,
        image_ids=image_ids,
    )
    failures: list[ReadFailure] = []
    repaired: list[str] = []
    done = boxes = 0
    stream = detector.stream(found, keep_images=not args.nosave, video_stride=args.vid_stride)
    with tqdm(total=expected, unit="img", desc="detect", file=sys.stderr, leave=False) as bar:
        for result in stream:
            if isinstance(result, ReadFailure):
                failures.append(result)
                bar.write(f"skipped {result.message}", file=sys.stderr)
                continue
            if result.repaired and result.source not in repaired:
                repaired.append(result.source)
                bar.write(f"repaired {result.source}: {result.repaired}", file=sys.stderr)
            writer.write(result)
            done += 1
            boxes += len(result)
            bar.update(1)
            if args.verbose:
                h, w = result.image_hw
                bar.write(f"{result.name} ({w}x{h}): {result.counts()}")
    json_path = writer.close()

    ms = detector.timings.per_image_ms()
    h, w = detector.input_hw
    print(
        f"{done} pictures, {boxes} boxes; per picture {ms['read']:.1f} ms waiting for reads, "
        f"{ms['inference']:.1f} ms network ({detector.backend_name}, {w}x{h}, batch {args.batch}), "
        f"{ms['postprocess']:.1f} ms post-processing"
    )
    if saving and done:
        print(f"results in {run_dir}" + (f" (COCO results: {json_path.name})" if json_path else ""))
    if writer.unlisted:
        print(
            f"warning: {writer.unlisted} pictures are not in {args.image_ids}: their image_id is "
            "the file stem",
            file=sys.stderr,
        )
    if repaired:
        print(
            f"{len(repaired)} truncated pictures were decoded as far as their data goes (the rest "
            f"grey): {', '.join(repaired[:5])}" + (" ..." if len(repaired) > 5 else ""),
            file=sys.stderr,
        )
    if failures:
        print(f"{len(failures)} sources could not be read:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure.message}", file=sys.stderr)
    if done == 0:
        raise DarkyoloError(
            f"nothing could be read from {len(args.sources)} source(s); see the list above"
            if failures
            else "the sources hold no pictures or video frames"
        )
    return 0


def _expected_count(found: SourceList, video_stride: int) -> int | None:
    """Pictures plus video frames the sources should give (for the progress bar)."""
    from darkyolo.data.images import video_info

    total = len(found.images)
    for video in found.videos:
        try:
            frames = video_info(video).frames
        except DarkyoloError:
            continue  # reported when the frames are read
        total += -(-frames // max(1, video_stride))
    return total or None
