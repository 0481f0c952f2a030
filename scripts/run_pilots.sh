#!/usr/bin/env bash
# Training-campaign pilots, one after another (one training process at a time, one
# thread each), each then scored on unseen cameras (scripts/score_extractors.py) while the
# next one trains. A pilot whose run folder already holds extractor.safetensors is skipped.
#   scripts/run_pilots.sh configs/pilots/p1_fresh_half.json configs/pilots/p3_x.json
set -u
HOLDOUT=Canon-EOS-80D,NIKON-D90,SONY-ILCE-7M2,Apple-iPhone-XR,Hewlett-Packard-Photosmart-M627,SAMSUNG-GT-P5210,simcam20,simcam21,simcam22,simcam23
SHARED=${SHARED:-../shared}
DATA=${DATA:-data}
export OMP_NUM_THREADS=1
for config in "$@"; do
  name=$(basename "$config" .json)
  run=runs/pilots/$name
  [ -f "$run/extractor.safetensors" ] && continue
  mkdir -p "$run"
  timeout 1200 .venv/bin/noisead train-extractor "$SHARED/cameras" "$DATA/simcams" -o "$run" \
    --config "$config" --holdout "$HOLDOUT" > "$run/log.txt" 2>&1
  timeout 900 .venv/bin/python scripts/score_extractors.py "$run/extractor.safetensors" \
    --shared "$SHARED" --data "$DATA" --json runs/pilots/scores.jsonl \
    > "$run/score.txt" 2>&1 &
done
wait
