#!/usr/bin/env bash
# Pack the training data for scripts/train_gpu.sh into a folder small enough for a remote
# GPU machine that takes at most 64 MiB (what fed the GPU run of docs/BENCHMARKS.md).
#
# Real cameras: 384 x 384 top-left crops of every image, cut LOSSLESSLY with
# `jpegtran -crop` (DCT coefficients untouched, EXIF kept, the 8x8 grid and the colour-filter
# phase stay at (0, 0)); re-encoding would destroy the camera's JPEG traces. Simulated
# cameras: 256 x 256 cuts of the first 30 images of each (PNG ones cropped as PNG). Held-out
# models are left out. Also copies the AWGN denoiser the DnCNN runs start from.
#
# Usage: scripts/pack_gpu_data.sh SHARED SIMCAMS OUT  (needs jpegtran: libjpeg-turbo-progs)
set -euo pipefail
SHARED=${1:?../shared}
SIMCAMS=${2:?data/simcams}
OUT=${3:?output folder}
PY=${PYTHON:-.venv/bin/python}
HOLD=" Canon-EOS-80D NIKON-D90 SONY-ILCE-7M2 Apple-iPhone-XR Hewlett-Packard-Photosmart-M627 SAMSUNG-GT-P5210 simcam20 simcam21 simcam22 simcam23 "
command -v jpegtran > /dev/null || { echo "jpegtran not found (libjpeg-turbo-progs)"; exit 1; }
mkdir -p "$OUT/cameras" "$OUT/simcams"
cut_jpeg() {  # SRC DEST SIZE
  jpegtran -copy all -crop "${3}x${3}+0+0" "$1" > "$2"
}
for d in "$SHARED"/cameras/*/; do
  c=$(basename "$d"); [[ "$HOLD" == *" $c "* ]] && continue
  mkdir -p "$OUT/cameras/$c"
  for f in "$d"*; do
    case "${f,,}" in *.jpg|*.jpeg) cut_jpeg "$f" "$OUT/cameras/$c/$(basename "$f")" 384 ;; esac
  done
done
for d in "$SIMCAMS"/simcam*/; do
  c=$(basename "$d"); [[ "$HOLD" == *" $c "* ]] && continue
  mkdir -p "$OUT/simcams/$c"
  for f in $(ls "$d" | grep -Ei '\.(jpg|jpeg|png)$' | head -30); do
    case "${f,,}" in
      *.png) "$PY" -c "import sys; from PIL import Image; Image.open(sys.argv[1]).crop((0, 0, 256, 256)).save(sys.argv[2])" "$d$f" "$OUT/simcams/$c/$f" ;;
      *) cut_jpeg "$d$f" "$OUT/simcams/$c/$f" 256 ;;
    esac
  done
done
cp "$SHARED/weights/dncnn_gray_awgn25.safetensors" "$OUT/"
du -sh "$OUT"
