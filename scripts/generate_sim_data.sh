#!/usr/bin/env bash
# Generate a synthetic training set and a held-out-object test set (Jacquard format, labels from
# simulated grasp trials) within a wall-clock budget.
#
#   PRESET=v2 BUDGET_MIN=60 WORKERS=2 OUT=/data/simv2 scripts/generate_sim_data.sh   # the v2 data
#   BUDGET_MIN=34 WORKERS=2 OUT=/data/sim scripts/generate_sim_data.sh               # v1 (the first set)
#
# Both sets are resumable: run the same command again to continue an interrupted run (complete
# scenes are skipped; the numbering continues). The test set (objects the training set never uses:
# --object-range test) gets TEST_SHARE of the time budget, the training set the rest; each stops
# starting new scenes when its time is up. Settings left empty take the preset's defaults
# (dsc-grasp sim-dataset --help). NICE (default 5) lowers the priority on a shared machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PRESET="${PRESET:-v1}"
OUT="${OUT:-$root/../simdata$([ "$PRESET" = v1 ] || echo "_$PRESET")}"
WORKERS="${WORKERS:-2}"
BUDGET_MIN="${BUDGET_MIN:-34}"        # wall-clock minutes for both sets together
TEST_SHARE="${TEST_SHARE:-0.1}"       # share of the budget for the held-out-object test set
VIEWS="${VIEWS:-}"                    # camera views per scene (v1: 1, v2: 2)
OBJECTS="${OBJECTS:-}"                # objects per scene A-B (v1: 1-4, v2: 1-6)
TRAIN_SEED="${TRAIN_SEED:-0}"         # train scenes: sim00000000, sim00000001, ...
TEST_SEED="${TEST_SEED:-10000000}"    # test scenes:  sim10000000, ... (ids never collide)
MAX_SCENES="${MAX_SCENES:-100000}"    # upper bound; the time limit ends the runs
NICE="${NICE:-5}"
PY="${PY:-.venv/bin/python}"

[ -x "$PY" ] || { echo "run scripts/setup_venv.sh first" >&2; exit 1; }
common=(--preset "$PRESET" --workers "$WORKERS" --scenes "$MAX_SCENES")
[ -n "$VIEWS" ] && common+=(--views "$VIEWS")
[ -n "$OBJECTS" ] && common+=(--objects-per-scene "$OBJECTS")
mkdir -p "$OUT"
start=$(date +%s)
budget_s=$(( BUDGET_MIN * 60 ))
test_s=$("$PY" -c "print(int($budget_s * $TEST_SHARE))")

echo "[sim] $(date -u +%FT%TZ) preset $PRESET, test set -> $OUT/test (time limit ${test_s}s, $WORKERS workers)"
nice -n "$NICE" "$PY" -m dsc_grasp_ros.cli sim-dataset "${common[@]}" --out "$OUT/test" --seed "$TEST_SEED" \
  --object-range test --time-limit "$test_s"

left=$(( budget_s - ($(date +%s) - start) - 30 ))   # 30 s for the last scenes in flight
if [ "$left" -gt 60 ]; then
  echo "[sim] $(date -u +%FT%TZ) train set -> $OUT/train (time limit ${left}s, $WORKERS workers)"
  nice -n "$NICE" "$PY" -m dsc_grasp_ros.cli sim-dataset "${common[@]}" --out "$OUT/train" --seed "$TRAIN_SEED" \
    --object-range train --time-limit "$left"
fi
echo "[sim] $(date -u +%FT%TZ) done in $(( $(date +%s) - start )) s; summaries: $OUT/{train,test}/dataset.json"
