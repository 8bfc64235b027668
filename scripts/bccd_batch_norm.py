"""The last step of the shipped ``bccd`` model: its batch-norm statistics recomputed from BCCD
``trainval`` pictures drawn as its last training stage drew them (no mosaics, Darknet jitter .3,
zoom 0.75-1.25, flips, HSV, sides 320-608 around 416, micro-batches of 16), with the trainer's own
:meth:`~darkyolo.training.trainer.Trainer.recalibrate`. The weights themselves are unchanged. See
docs/model-card.md. Usage::

    python scripts/bccd_batch_norm.py bccd_yolo/bccd-trainval.data yolov3-tiny-bccd.weights
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from darkyolo.darknet.weights import read_header
from darkyolo.models.io import save_darknet_weights
from darkyolo.models.zoo import trained_model
from darkyolo.training.plan import TrainOptions
from darkyolo.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help=".data file whose train= list is BCCD trainval")
    parser.add_argument("output", type=Path, help="the .weights file to write")
    args = parser.parse_args()
    _, weights, _ = trained_model("bccd").files()
    header = read_header(Path(weights).read_bytes()[:20], str(weights))
    with tempfile.TemporaryDirectory() as scratch:
        options = TrainOptions(
            model="bccd", data=args.data, epochs=16, batch=16, img_size=416, mosaic=0.0,
            scale=(0.75, 1.25), anchors="cfg", workers=0, project=scratch, progress=False,
            plots=False,
        )  # fmt: skip
        trainer = Trainer(options, log=print)
        trainer.setup()
        trainer.epoch = options.epochs  # the last stage's last epoch (no mosaics in any case)
        used = trainer.recalibrate(trainer.model)
        save_darknet_weights(trainer.model, args.output, header)
    print(f"{args.output}: statistics from {used} pictures at sides {sorted(trainer.sizes)}")


if __name__ == "__main__":
    main()
