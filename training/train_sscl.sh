#!/usr/bin/env bash
# Reproduce both shipped SSCL checkpoints, one after the other, on this CPU (about 20 min each).
# Run from the repository root:  bash training/train_sscl.sh   (logs: /work/runs/sscl/ or $SSCL_LOGS)
set -euo pipefail
logs=${SSCL_LOGS:-/work/runs/sscl}
mkdir -p "$logs"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
for variant in timbre expression; do
  python -m training.train_sscl --config "training/configs/sscl_${variant}.yaml" 2>&1 | tee "$logs/${variant}.log"
done
