#!/usr/bin/env bash
# Generate the synthetic training set and the held-out-object test set for the shipped models.
#
#   scripts/generate_sim_data.sh                     # defaults below
#   BUDGET_MIN=10 WORKERS=1 OUT=/tmp/sim scripts/generate_sim_data.sh
#
# Both sets are resumable: run the same command again to continue an interrupted run. The test
# set (objects the training set never uses: --object-range test) gets TEST_SHARE of the time
# budget, the training set the rest; each stops starting new scenes when its time is up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

OUT="${OUT:-/work/simdata}"
WORKERS="${WORKERS:-2}"
BUDGET_MIN="${BUDGET_MIN:-34}"        # wall-clock minutes for both sets together
TEST_SHARE="${TEST_SHARE:-0.1}"       # share of the budget for the held-out-object test set
VIEWS="${VIEWS:-1}"
OBJECTS="${OBJECTS:-1-4}"
TRAIN_SEED="${TRAIN_SEED:-0}"         # train scenes: sim00000000, sim00000001, ...
TEST_SEED="${TEST_SEED:-10000000}"    # test scenes:  sim10000000, ... (ids never collide)
MAX_SCENES="${MAX_SCENES:-100000}"    # upper bound; the time limit ends the runs

py=.venv/bin/python
[ -x "$py" ] || { echo "run scripts/setup_venv.sh first" >&2; exit 1; }
mkdir -p "$OUT"
start=$(date +%s)
budget_s=$(( BUDGET_MIN * 60 ))
test_s=$("$py" -c "print(int($budget_s * $TEST_SHARE))")

echo "[sim] $(date -u +%FT%TZ) test set -> $OUT/test (time limit ${test_s}s, $WORKERS workers)"
"$py" -m dsc_grasp_ros.cli sim-dataset --out "$OUT/test" --scenes "$MAX_SCENES" --seed "$TEST_SEED" \
  --object-range test --views "$VIEWS" --objects-per-scene "$OBJECTS" --workers "$WORKERS" --time-limit "$test_s"

left=$(( budget_s - ($(date +%s) - start) - 30 ))   # 30 s for the last scenes in flight
if [ "$left" -gt 60 ]; then
  echo "[sim] $(date -u +%FT%TZ) train set -> $OUT/train (time limit ${left}s, $WORKERS workers)"
  "$py" -m dsc_grasp_ros.cli sim-dataset --out "$OUT/train" --scenes "$MAX_SCENES" --seed "$TRAIN_SEED" \
    --object-range train --views "$VIEWS" --objects-per-scene "$OBJECTS" --workers "$WORKERS" --time-limit "$left"
fi
echo "[sim] $(date -u +%FT%TZ) done in $(( $(date +%s) - start )) s; summaries: $OUT/{train,test}/dataset.json"
