#!/usr/bin/env bash
# Fine-tune a model on the real Cornell dev samples with an honest object-wise held-out part,
# then score it (held-out Cornell, all Jacquard samples: never trained on) beside GR-ConvNet3 on
# the same images. CPU or CUDA (dsc-grasp picks CUDA when present). docs/training.md has the numbers.
#
#   scripts/finetune_real.sh [OUT] [MINUTES] [LR] [INIT_MODEL]
#   scripts/finetune_real.sh runs/ft_cornell_rgbd 25 5e-4 models/dsc_graspnet_rgbd.pt
#
# The split is config/splits/cornell_shared_split.json (33 train / 17 held-out images, 10 / 5
# objects of config/splits/cornell_shared_objects.txt): the held-out images are never trained on.
# Pass DATA=... to use another copy of the shared samples (default: <project>/../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="${1:-runs/ft_cornell_rgbd}"
MINUTES="${2:-25}"
LR="${3:-5e-4}"
INIT="${4:-models/dsc_graspnet_rgbd.pt}"
DATA="${DATA:-$ROOT/../shared/data}"
SPLIT=config/splits/cornell_shared_split.json
PY=.venv/bin/python
[ -d "$DATA/cornell" ] || { echo "no Cornell samples at $DATA/cornell (set DATA=...)" >&2; exit 2; }
# the shipped models use the legacy up-sampling order: fine-tuning them keeps it
ORDER=$($PY -c "import json,sys; print(json.load(open(sys.argv[1].rsplit('.',1)[0]+'.json'))['network'].get('upsample_order','eq5'))" "$INIT")
MOD=$($PY -c "import json,sys; print(json.load(open(sys.argv[1].rsplit('.',1)[0]+'.json'))['modality'])" "$INIT")

if [ ! -f "$OUT/summary.json" ]; then
  RESUME=(); [ -f "$OUT/checkpoints/last.pt" ] && RESUME=(--resume)
  $PY -m dsc_grasp_ros.cli train --dataset cornell --path "$DATA/cornell" \
      --object-map config/splits/cornell_shared_objects.txt --split-file "$SPLIT" \
      --modality "$MOD" --upsample-order "$ORDER" --init-from "$INIT" --protocol paper --depth-ref plane \
      --epochs 200 --batch-size 8 --lr "$LR" --max-minutes "$MINUTES" --workers 1 --out "$OUT" "${RESUME[@]}"
fi
$PY -m dsc_grasp_ros.cli export "$OUT" --which last --out "$OUT/last/model.pt"
for M in "$OUT/model.pt" "$OUT/last/model.pt"; do
  D=$(dirname "$M")
  $PY -m dsc_grasp_ros.cli evaluate --dataset cornell --path "$DATA/cornell" --model "$M" --split-file "$SPLIT" \
      --no-progress --output "$D/eval_cornell_heldout.json"
  $PY -m dsc_grasp_ros.cli evaluate --dataset jacquard --path "$DATA/jacquard" --model "$M" \
      --no-progress --output "$D/eval_jacquard_all.json"
done
# GR-ConvNet3 on the same images, its own pipeline (native centre crop for Cornell, whole image for Jacquard)
$PY -m dsc_grasp_ros.cli eval-peers --dataset cornell --path "$DATA/cornell" --crop centre --peers grconvnet3 --no-ours --json --no-progress > "$OUT/peer_cornell.json"
$PY -m dsc_grasp_ros.cli eval-peers --dataset jacquard --path "$DATA/jacquard" --crop square --peers grconvnet3 --no-ours --json --no-progress > "$OUT/peer_jacquard.json"
$PY - "$OUT" "$SPLIT" <<'EOF'
import json, sys
out, split = sys.argv[1], json.load(open(sys.argv[2]))
test = set(split["test"])
def peer(name, ids=None):
    r = json.load(open(f"{out}/{name}"))["results"][0]["per_image"]
    c = [p["correct"] for p in r if ids is None or p["id"] in ids]
    return f"{sum(c)}/{len(c)}"
for which in ("model.pt (best epoch, chosen on the held-out part)", "last/model.pt (last epoch)"):
    d = out if which.startswith("model") else f"{out}/last"
    c = json.load(open(f"{d}/eval_cornell_heldout.json")); j = json.load(open(f"{d}/eval_jacquard_all.json"))
    print(f"{which}: Cornell held-out {c['correct']}/{c['count']}, Jacquard {j['correct']}/{j['count']}")
print(f"GR-ConvNet3: Cornell held-out {peer('peer_cornell.json', test)}, Jacquard {peer('peer_jacquard.json')}")
EOF
