#!/usr/bin/env bash
# Train the shipped models on our synthetic (Jacquard-format) data and export them to models/.
#
#   scripts/train_sim.sh DATA_DIR [OUT_ROOT] [MINUTES_PER_MODEL]
#
# One run per modality (MODALITIES, default "rgbd d rgb"), object-wise (per-scene) 90/10 split,
# augmentation on (a synthetic set is small), at most MINUTES_PER_MODEL minutes each (default 60)
# and EPOCHS epochs (default 50). Each run's best epoch is exported to models/dsc_graspnet_<m>.pt
# (+ .json, + .onnx) unless EXPORT=0. EXTRA passes more 'dsc-grasp train' options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:?usage: $0 DATA_DIR [OUT_ROOT] [MINUTES_PER_MODEL]}"
out_root="${2:-runs/sim}"
minutes="${3:-60}"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
for m in ${MODALITIES:-rgbd d rgb}; do
  run="$out_root/sim_object_$m"
  resume=()
  [ -f "$run/checkpoints/last.pt" ] && resume=(--resume)
  echo "=== $m -> $run (budget $minutes min)"
  "$py" -m dsc_grasp_ros.cli train --dataset jacquard-format --path "$data" --modality "$m" --split object \
    --augment on --epochs "${EPOCHS:-50}" --max-minutes "$minutes" --out "$run" "${resume[@]}" ${EXTRA:-}
  if [ "${EXPORT:-1}" = 1 ]; then
    name="dsc_graspnet_$m.pt"
    "$py" -m dsc_grasp_ros.cli export "$run" --out "$root/models/$name" --onnx
  fi
done
