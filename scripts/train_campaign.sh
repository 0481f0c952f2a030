#!/usr/bin/env bash
# The learned-fingerprint training campaign: DnCNN-small and Restormer-tiny trained with the
# same data recipe at equal CPU time, in alternating legs of LEG_S CPU seconds each (one
# training process at a time, one thread), LEGS legs per model in all. The limits count
# the training process's CPU seconds (time_limit_cpu), not the wall clock, which the
# machine's other users stretch. DnCNN-small continues the shipped extractor, whose
# training cost about HEADSTART_S seconds; Restormer-tiny starts from scratch and gets as
# much more in its first leg, so that both have had the same CPU time at the end of every
# pair of legs. Each run's CPU time is read back from its log.jsonl (every resumed
# segment, up to its last checkpoint), so running this again (make train-campaign)
# continues where it stopped, and a leg cut short gets only what it still lacks.
#   scripts/train_campaign.sh     # LEGS=6 LEG_S=1500 HEADSTART_S=3960: 2 x 3.2 CPU-hours
set -u
HOLDOUT=${HOLDOUT:-Canon-EOS-80D,NIKON-D90,SONY-ILCE-7M2,Apple-iPhone-XR,Hewlett-Packard-Photosmart-M627,SAMSUNG-GT-P5210,simcam20,simcam21,simcam22,simcam23}
SHARED=${SHARED:-../shared}
DATA=${DATA:-data}
LEGS=${LEGS:-6}
LEG_S=${LEG_S:-1500}
HEADSTART_S=${HEADSTART_S:-3960}
OUT=${OUT:-runs/campaign}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
# DnCNN-small's start (configs/campaign_dncnn_small.json): the shipped default's extractor
[ -f runs/shipped-extractor.safetensors ] || .venv/bin/python scripts/export_extractor.py \
  src/noisead/weights/default.safetensors runs/shipped-extractor.safetensors || exit 1

trained_seconds() {  # the CPU seconds of training a run's log holds, over its segments
  .venv/bin/python - "$1/log.jsonl" <<'PY'
import json, sys
from pathlib import Path
path, total, last = Path(sys.argv[1]), 0.0, 0.0
for line in (path.read_text().splitlines() if path.is_file() else []):
    h = json.loads(line)
    s = h.get("cpu_seconds", h["seconds"])
    if s < last:  # a resumed segment starts its clock again
        total += last
    last = s
print(int(total + last))
PY
}

for leg in $(seq 1 "$LEGS"); do
  for model in dncnn_small restormer_tiny; do
    run="$OUT/${model//_/-}"
    mkdir -p "$run"
    target=$((leg * LEG_S))
    [ "$model" = restormer_tiny ] && target=$((target + HEADSTART_S))
    limit=$((target - $(trained_seconds "$run")))
    [ "$limit" -lt 60 ] && continue
    echo "$(date -u +%FT%TZ) leg $leg/$LEGS: $model for $limit s" >> "$OUT/campaign.log"
    .venv/bin/noisead train-extractor "$SHARED/cameras" "$DATA/simcams" -o "$run" \
      --config "configs/campaign_${model}.json" --holdout "$HOLDOUT" --time-limit "$limit" \
      >> "$run/log.txt" 2>&1 || { echo "leg $leg: $model failed" >> "$OUT/campaign.log"; exit 1; }
  done
done
echo "$(date -u +%FT%TZ) all $LEGS legs done" >> "$OUT/campaign.log"
