#!/usr/bin/env bash
# A long, low-priority training of a shipped model that resumes across invocations and records its
# curve (training samples seen vs held-out accuracy) after every chunk of training.
#
#   scripts/train_long.sh MODEL          # MODEL: rgbd (also d or rgb); runs until stopped
#   setsid nohup nice -n 19 scripts/train_long.sh rgbd > runs/long_rgbd/train.log 2>&1 &   # in the background
#   touch runs/long_rgbd/STOP            # stop after the current chunk (or: kill -- -PID, PID in runs/long_rgbd/pid)
#   scripts/train_long.sh rgbd           # later: continues from runs/long_rgbd/checkpoints/last.pt
#
# 1. Data, generated once into DATA (git-ignored): a v2 synthetic training set (SCENES scenes from
#    seed 20000000, training objects only) and a held-out-object test set (TEST_SCENES scenes from
#    seed 10000000), labelled with the GRIPPER stroke (default the Robotiq 2F-140, so boxes wider
#    than 8 cm get grasps), each within GEN_MIN / TEST_GEN_MIN minutes with one worker. Later
#    invocations reuse it (GENERATE=1 continues an unfinished set; a resumed run keeps its split, so
#    more data means a new RUN with --init-from this run's model).
# 2. Training in chunks of CHUNK_MIN minutes, as the shipped recipes (docs/training.md): --protocol
#    scale, --depth-ref plane, batch 8, Ranger lr 1e-3, with the Cornell training split mixed in
#    (config/splits/cornell_shared_split.json: its 17 held-out images are never trained on). The
#    first chunk starts from models/dsc_graspnet_MODEL.pt, every later one resumes (same step count,
#    optimiser state and split). --precision auto: bfloat16 where the CPU runs it natively.
#    Extra data (optional): MIX="SPEC [SPEC...]", specs of dsc-grasp train --mix separated by spaces,
#    each mixed in beside the Cornell split, e.g. MIX="jacquard-format:runs/simdata_cornell,repeat=2
#    jacquard-format:runs/simdata_wrist" (protocol and depth default to the run's: scale, stereo).
#    Unset, the training is the one above. A run keeps its MIX: give every invocation of one RUN the
#    same (a resume does not check it); new data is for a new RUN with INIT = this run's weights.
#    A model for one gripper (optional): MAX_OPENING=0.08 clips every training label's opening to the
#    gripper's largest (dsc-grasp train --max-opening; the Panda hand: 0.08 m), so that the model does
#    not predict openings that gripper's node rejects as too wide. Unset: labels as generated.
# 3. After every chunk, the latest weights are scored on the real Cornell held-out images, the real
#    Jacquard samples and the synthetic test set, and the points are appended to RUN/curve.json
#    (python -m dsc_grasp_ros.training.long_run record), drawn as RUN/curve.png by dsc-grasp plot
#    curve; for rgbd the curve starts from config/curves/rgbd_csp_first.json (the earlier points).
#
# Low priority for a shared machine: NICE (default 19) and THREADS torch threads (default 1), so
# tests and measurements keep their cores. ROUNDS chunks (default 0: until stopped). LR: Ranger's learning
# rate (default 1e-3, the shipped recipes'; lower for a short fine-tune of a trained model).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

MODEL="${1:?usage: $0 rgbd|d|rgb}"
case "$MODEL" in rgbd|d|rgb) ;; *) echo "MODEL must be rgbd, d or rgb" >&2; exit 2 ;; esac
RUN="${RUN:-runs/long_$MODEL}"
DATA="${DATA:-runs/simdata_long}"
SHARED="${SHARED:-$root/../shared}"
GRIPPER="${GRIPPER:-robotiq_2f_140}"
SCENES="${SCENES:-400}"
TEST_SCENES="${TEST_SCENES:-20}"
GEN_MIN="${GEN_MIN:-18}"
TEST_GEN_MIN="${TEST_GEN_MIN:-7}"
CHUNK_MIN="${CHUNK_MIN:-60}"
ROUNDS="${ROUNDS:-0}"
THREADS="${THREADS:-1}"
NICE="${NICE:-19}"
PRECISION="${PRECISION:-auto}"
LR="${LR:-1e-3}"
MAX_OPENING="${MAX_OPENING:-}"
INIT="${INIT:-models/dsc_graspnet_$MODEL.pt}"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || { echo "run scripts/setup_venv.sh first" >&2; exit 1; }
[ -d "$SHARED/data/cornell" ] || { echo "no $SHARED/data/cornell (the Cornell training split is mixed in)" >&2; exit 1; }

# low priority and a fixed thread count for this script and everything it starts
current="$(nice)"
if [ "$current" -lt "$NICE" ]; then renice -n "$NICE" -p $$ > /dev/null; fi
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
mkdir -p "$RUN"
if [ -f "$RUN/pid" ] && [ "$(cat "$RUN/pid")" != $$ ] && kill -0 "$(cat "$RUN/pid")" 2> /dev/null \
   && grep -q train_long "/proc/$(cat "$RUN/pid")/cmdline" 2> /dev/null; then
  echo "$RUN is being trained by process $(cat "$RUN/pid"): stop it first (touch $RUN/STOP or kill -- -PID)" >&2
  exit 1
fi
echo $$ > "$RUN/pid"
rm -f "$RUN/STOP"
cli() { "$PY" -m dsc_grasp_ros.cli "$@"; }
stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ---- 1. data (once)
gen() {  # gen OUT SCENES SEED RANGE MINUTES
  if [ ! -f "$1/.generated" ] || [ "${GENERATE:-0}" = 1 ]; then
    echo "$(stamp) generating $1 ($2 scenes at most, $5 min, gripper $GRIPPER)"
    cli sim-dataset --preset v2 --gripper "$GRIPPER" --scenes "$2" --seed "$3" --object-range "$4" --workers 1 \
      --time-limit "$(( $5 * 60 ))" --quiet --out "$1"
    touch "$1/.generated"
  fi
}
gen "$DATA/train" "$SCENES" 20000000 train "$GEN_MIN"
gen "$DATA/test" "$TEST_SCENES" 10000000 test "$TEST_GEN_MIN"

# ---- 2./3. train in chunks, score after each
CORNELL_MIX="cornell:$SHARED/data/cornell,split=config/splits/cornell_shared_split.json,repeat=4,protocol=paper"
MIXES=(--mix "$CORNELL_MIX")
read -r -a extra <<< "${MIX:-}"  # the optional extra data sets
for spec in "${extra[@]}"; do
  case "$spec" in *:*) dir="${spec#*:}"; dir="${dir%%,*}" ;; *) dir="" ;; esac
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "MIX: $spec is not DATASET:DIR[,key=value...] with an existing DIR" >&2; exit 2; }
  MIXES+=(--mix "$spec")
done
OPENING=()
if [ -n "$MAX_OPENING" ]; then
  [[ "$MAX_OPENING" =~ ^0?\.[0-9]*[1-9][0-9]*$ ]] \
    || { echo "MAX_OPENING: $MAX_OPENING is not an opening in metres (0 < M < 1, e.g. 0.08)" >&2; exit 2; }
  OPENING=(--max-opening "$MAX_OPENING")
fi
SETS=(--set "real Cornell held-out (17)=--dataset cornell --path $SHARED/data/cornell --split-file config/splits/cornell_shared_split.json"
      --set "real Jacquard (23)=--dataset jacquard --path $SHARED/data/jacquard"
      --set "synthetic unseen objects, $GRIPPER labels=--dataset jacquard-format --path $DATA/test --protocol scale --depth stereo")
BASE=()
if [ "$MODEL" = rgbd ] && [ "$INIT" = models/dsc_graspnet_rgbd.pt ]; then
  BASE=(--base config/curves/rgbd_csp_first.json)
  SAMPLES_BEFORE="${SAMPLES_BEFORE:-5864}"  # the shipped RGB-D model 0.1.0: 733 steps x batch 8
fi
SAMPLES_BEFORE="${SAMPLES_BEFORE:-0}"       # training samples the INIT model had seen
record() { "$PY" -m dsc_grasp_ros.training.long_run record "$RUN" "${BASE[@]}" --samples-before "$SAMPLES_BEFORE" "${SETS[@]}" "$@" \
             | "$PY" -c "import json,sys; r=json.load(sys.stdin); print(r['time'], 'step', r['step'], 'samples', r['samples'], *(f\"{k}: {v['correct']}/{v['count']}\" for k, v in r['sets'].items()), sep=' | ')"
           cli plot curve "$RUN/curve.json" --out "$RUN/curve.png" > /dev/null; }

if [ ! -f "$RUN/curve/points.jsonl" ]; then
  echo "$(stamp) scoring the starting model $INIT"
  record --initial "$INIT" || echo "$(stamp) scoring failed (the run goes on)"
fi
i=0
while [ "$ROUNDS" = 0 ] || [ "$i" -lt "$ROUNDS" ]; do
  if [ -f "$RUN/checkpoints/last.pt" ]; then start=(--resume); else start=(--init-from "$INIT"); fi
  echo "$(stamp) training chunk $((i + 1)): $CHUNK_MIN min (${start[*]})"
  cli train --dataset jacquard-format --path "$DATA/train" --split image --depth stereo --protocol scale \
    --depth-ref plane --upsample-order csp_first --augment off --batch-size 8 --lr "$LR" --epochs 1000000 \
    --max-minutes "$CHUNK_MIN" --workers 0 --seed 0 --no-progress --modality "$MODEL" --precision "$PRECISION" \
    "${MIXES[@]}" "${OPENING[@]}" --out "$RUN" "${start[@]}"
  echo "$(stamp) scoring the latest weights"
  record || echo "$(stamp) scoring failed (the run goes on; the next chunk scores again)"
  i=$((i + 1))
  if [ -f "$RUN/STOP" ]; then echo "$(stamp) $RUN/STOP found: stopping"; rm -f "$RUN/STOP"; break; fi
done
