#!/usr/bin/env bash
# Second example: detect blood cells on the bundled BCCD test pictures with the bundled `bccd` model
# (yolov3-tiny trained by darkyolo on BCCD). Pictures with boxes, YOLO txt and COCO JSON land in
# runs/detect/<new name>/. Extra arguments go to `darkyolo detect` (e.g. --conf 0.4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
assets=src/darkyolo/assets/bccd
.venv/bin/darkyolo detect "$assets/images" \
  --model bccd \
  --save-txt --save-json --verbose "$@"
