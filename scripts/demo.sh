#!/usr/bin/env bash
# Main job: box people, animals and vehicles in pictures with the bundled default model (Darknet's
# official YOLOv3-tiny, 80 COCO classes). With no arguments it runs on the bundled sample pictures;
# otherwise on the pictures, folders, globs or videos given. Annotated pictures and a COCO results
# JSON land in runs/detect/<new name>/. Options after the sources go to `darkyolo detect`
# (e.g. ./scripts/demo.sh my_photos/ --conf 0.4).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$OLDPWD
bash scripts/setup.sh
sources=()
for arg in "$@"; do
  case "$arg" in
    -*) break ;;
    /*) sources+=("$arg") ;;
    *) sources+=("$here/$arg") ;;
  esac
  shift
done
if [ ${#sources[@]} -eq 0 ]; then
  sources=(src/darkyolo/assets/samples)
fi
.venv/bin/darkyolo detect "${sources[@]}" --save-json --verbose "$@"
