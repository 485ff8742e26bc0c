#!/usr/bin/env bash
# Reproduce both shipped SSCL checkpoints on this CPU: WORLD pseudo-singers once (~8 min on a busy core), then
# the two encoders in parallel, one torch thread + one data worker each (900 steps, ~38 min; max_minutes: 55).
# Run from the repository root:  bash training/train_sscl.sh
#   SSCL_OUT: folder for the exported models (default hub/, i.e. overwrite the shipped ones); logs in SSCL_LOGS.
set -euo pipefail
out=${SSCL_OUT:-hub}
logs=${SSCL_LOGS:-runs/sscl2}
data=runs/sscl_data # = data.pseudo_sources in the configs
mkdir -p "$logs"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
if [ ! -f "$data/manifest.csv" ]; then
  python -m training.pseudo_singers --config training/configs/sscl_timbre.yaml --out "$data" 2>&1 | tee "$logs/pseudo_singers.log"
fi
pids=()
for variant in timbre expression; do
  python -m training.train_sscl --config "training/configs/sscl_${variant}.yaml" \
    --out "$out/voicerec-sscl-${variant}" --log-dir "$logs" > "$logs/${variant}.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
