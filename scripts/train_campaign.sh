#!/usr/bin/env bash
# The learned-fingerprint training campaign: DnCNN-small and Restormer-tiny trained with the
# same recipe at equal CPU time, in alternating legs of LEG_S seconds each (one training
# process at a time, one thread), LEGS legs per model in all. Every leg resumes its run's
# checkpoint, and runs/campaign/legs.done counts the finished leg pairs, so running this
# again (make train-campaign) continues where it stopped; a leg cut short is run again
# from its run's last checkpoint.
#   scripts/train_campaign.sh            # LEGS=6 LEG_S=1500: 2 x 2.5 CPU-hours in all
set -u
HOLDOUT=${HOLDOUT:-Canon-EOS-80D,NIKON-D90,SONY-ILCE-7M2,Apple-iPhone-XR,Hewlett-Packard-Photosmart-M627,SAMSUNG-GT-P5210,simcam20,simcam21,simcam22,simcam23}
SHARED=${SHARED:-../shared}
DATA=${DATA:-data}
LEGS=${LEGS:-6}
LEG_S=${LEG_S:-1500}
OUT=${OUT:-runs/campaign}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
done_legs=$(cat "$OUT/legs.done" 2>/dev/null || echo 0)
for leg in $(seq $((done_legs + 1)) "$LEGS"); do
  for model in dncnn_small restormer_tiny; do
    run="$OUT/${model//_/-}"
    mkdir -p "$run"
    echo "$(date -u +%FT%TZ) leg $leg/$LEGS: $model" >> "$OUT/campaign.log"
    .venv/bin/noisead train-extractor "$SHARED/cameras" "$DATA/simcams" -o "$run" \
      --config "configs/campaign_${model}.json" --holdout "$HOLDOUT" --time-limit "$LEG_S" \
      >> "$run/log.txt" 2>&1 || { echo "leg $leg: $model failed" >> "$OUT/campaign.log"; exit 1; }
  done
  echo "$leg" > "$OUT/legs.done.tmp" && mv "$OUT/legs.done.tmp" "$OUT/legs.done"
done
echo "$(date -u +%FT%TZ) all $LEGS legs done" >> "$OUT/campaign.log"
