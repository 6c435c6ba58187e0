#!/usr/bin/env bash
# Reproduce the DSC-GraspNet paper's accuracy tables (Tables II and III) with one command.
#
#   scripts/train_paper.sh cornell  /data/cornell  [runs/paper]   # Table II: IW and OW x {d, rgb, rgbd}
#   scripts/train_paper.sh jacquard /data/jacquard [runs/paper]   # Table III: {d, rgb, rgbd}
#
# Protocol (paper IV-A): 224x224 input, Ranger, lr 0.001, batch 32, 50 epochs, P-Huber loss,
# 90/10 split; Cornell with rotation/zoom augmentation, Jacquard without. Every run writes its
# folder (model, split, history, TensorBoard); at the end a Markdown table of the held-out
# accuracies is printed and written to OUT_ROOT/results_<dataset>.md.
#
# Environment:
#   CORNELL_OBJECT_MAP  image -> object mapping file for the Cornell object-wise split (lines
#                       '<image> <object-id>'); without it the OW rows are skipped with a note.
#   MODALITIES          default "d rgb rgbd";  EPOCHS (50), BATCH (32), SEED (0)
#   NPROC               GPUs per run (torchrun DDP) when > 1;  EXTRA  more 'dsc-grasp train' options
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dataset="${1:?usage: $0 cornell|jacquard DATA_DIR [OUT_ROOT]}"
data="${2:?usage: $0 cornell|jacquard DATA_DIR [OUT_ROOT]}"
out_root="${3:-runs/paper}"
modalities="${MODALITIES:-d rgb rgbd}"
epochs="${EPOCHS:-50}"; batch="${BATCH:-32}"; seed="${SEED:-0}"; nproc="${NPROC:-1}"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3

case "$dataset" in
  cornell) splits="image object" ;;
  jacquard) splits="image" ;;
  *) echo "dataset must be cornell or jacquard" >&2; exit 2 ;;
esac

run_train() {
  if [ "$nproc" -gt 1 ]; then
    "$py" -m torch.distributed.run --standalone --nproc_per_node="$nproc" -m dsc_grasp_ros.cli train "$@"
  else
    "$py" -m dsc_grasp_ros.cli train "$@"
  fi
}

mkdir -p "$out_root"
for split in $splits; do
  extra_split=()
  if [ "$dataset" = cornell ] && [ "$split" = object ]; then
    if [ -z "${CORNELL_OBJECT_MAP:-}" ]; then
      echo "skipping Cornell object-wise: set CORNELL_OBJECT_MAP to the image -> object mapping file" >&2
      continue
    fi
    extra_split=(--object-map "$CORNELL_OBJECT_MAP")
  fi
  for m in $modalities; do
    run="$out_root/${dataset}_${split}_${m}"
    if [ -f "$run/summary.json" ]; then echo "done already: $run"; continue; fi
    resume=()
    [ -f "$run/checkpoints/last.pt" ] && resume=(--resume)
    echo "=== $dataset $split-wise $m -> $run"
    run_train --dataset "$dataset" --path "$data" --modality "$m" --split "$split" "${extra_split[@]}" \
      --epochs "$epochs" --batch-size "$batch" --seed "$seed" --out "$run" "${resume[@]}" ${EXTRA:-}
  done
done

"$py" - "$out_root" "$dataset" <<'PY'
import json, sys
from pathlib import Path
root, ds = Path(sys.argv[1]), sys.argv[2]
rows = ["| dataset | split | modality | accuracy | held-out | epochs (best) | hardware | wall time (min) |", "|---|---|---|---|---|---|---|---|"]
for s in sorted(root.glob(f"{ds}_*/summary.json")):
    d = json.loads(s.read_text()); t = d["training"]
    cfg = json.loads((s.parent / "config.json").read_text())["config"]
    rows.append(f"| {ds} | {t['split']}-wise | {cfg['modality']} | {100 * d['accuracy']:.1f} % | {d['count']} | "
                f"{d['epochs_run']} ({d['best_epoch']}) | {d['hardware']} | {d['wall_minutes']:.1f} |")
table = "\n".join(rows)
(root / f"results_{ds}.md").write_text(table + "\n")
print(table)
PY
