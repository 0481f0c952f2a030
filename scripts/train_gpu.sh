#!/usr/bin/env bash
# One prepared GPU run: four extractors trained side by side on one GPU, each for a fixed
# time (configs/gpu/*.json: time_limit_s), each fed by its own batch-drawing processes.
#
#   dncnn17_aug          DnCNN 17x64 from the AWGN denoiser, raw DBL, JPEG/resize augmentation
#   dncnn17_noaug        the same without augmentation (does augmentation help? row by row)
#   restormer_small      Restormer (dim 24, 3 levels) from scratch, patch-standardized DBL
#   dncnn_small_distill  DnCNN 10x32 distilled from the AWGN denoiser, then patch-standardized DBL
#
#   dncnn17_aug_cont     dncnn17_aug's best weights trained on at a lower rate, with clipping
#                        (RUN_NAMES=dncnn17_aug_cont; DATA_DIR/dncnn17_aug_cont.init.safetensors)
#
#   dncnn17_snapshots    (next run) DnCNN 17x64, no augmentation, lr 3e-5, clipped, 1200 steps,
#                        a snapshot every 200 steps, to be chosen with scripts/select_snapshot.py
#                        on unseen cameras' localization
#
# Usage: [RUN_NAMES="..."] scripts/train_gpu.sh DATA_DIR OUT_DIR
#   DATA_DIR holds cameras/ and simcams/ (ROOT/<camera-model>/<image>) and the denoiser
#   dncnn_gray_awgn25.safetensors. On a machine that sees ../shared and data/simcams
#   directly, pass those folders' parent instead. OUT_DIR gets one <run>.tar.gz per run
#   (weights, sidecars, log.jsonl, console log).
set -u
DATA=${1:?data folder}
OUT=${2:?output folder}
PY=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/noisead-gpu-runs}
HARD_LIMIT=${HARD_LIMIT:-520}   # seconds; a run still going then is stopped (its best weights stay)
mkdir -p "$RUNS" "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
RUN_NAMES=${RUN_NAMES:-dncnn17_aug dncnn17_noaug restormer_small dncnn_small_distill}
for run in $RUN_NAMES; do
  init=()
  grep -q '"init_from": "' "configs/gpu/$run.json" && init=(--init-from "$DATA/dncnn_gray_awgn25.safetensors")
  # a run that continues another: DATA/<run>.init.safetensors (+ .json), an extractor
  [ -f "$DATA/$run.init.safetensors" ] && init=(--init-from "$DATA/$run.init.safetensors")
  timeout -s INT "$HARD_LIMIT" "$PY" -m noisead.cli --quiet train-extractor \
      "$DATA/cameras" "$DATA/simcams" -o "$RUNS/$run" --config "configs/gpu/$run.json" \
      "${init[@]}" ${EXTRA_ARGS:-} > "$RUNS/$run.console.log" 2>&1 &
done
wait
# Keep each archive under MAX_MB (the device tool returns files of at most 16 MiB): the best
# and last extractors always, and as many step snapshots as fit, evenly spaced.
prune_snapshots() {
  "$PY" - "$1" "${MAX_MB:-14}" <<'PYEOF'
import re, sys
from pathlib import Path
run, max_mb = Path(sys.argv[1]), float(sys.argv[2])
snaps = sorted(run.glob("extractor-step*.safetensors"),
               key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
if snaps:
    size = snaps[0].stat().st_size / 2**20
    room = max(int(max_mb // size) - 2, 0)
    if len(snaps) > room:
        keep = {snaps[round(i * (len(snaps) - 1) / max(room - 1, 1))] for i in range(room)}
        for p in snaps:
            if p not in keep:
                p.unlink()
                p.with_suffix(".json").unlink(missing_ok=True)
PYEOF
}
for run in $RUN_NAMES; do
  prune_snapshots "$RUNS/$run"
  cp "$RUNS/$run.console.log" "$RUNS/$run/" 2>/dev/null
  tail -n 3 "$RUNS/$run.console.log"
  tail -n 1 "$RUNS/$run/log.jsonl" 2>/dev/null
  tar -C "$RUNS" -czf "$OUT/$run.tar.gz" --exclude='checkpoint.*' "$run"
done
ls -la "$OUT"
