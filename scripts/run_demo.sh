#!/usr/bin/env bash
# The README's first command: run grasp_node on the bundled bag and model, with no camera or robot.
#
#   ./scripts/run_demo.sh [--out DIR] [--bag BAG] [--min-quality Q] [--realtime]
#
# Sets up .venv (first run installs the pinned dependencies), then starts three processes over
# ROS 2 (Fast DDS, shared memory via config/fastdds_large_images.xml):
#   grasp_node      the node under demo (use_sim_time, default parameters from config/dsc_grasp.yaml),
#                   target_frame = the bag's base frame (base_link): grasps in the robot's frame,
#                   through the node's tf2 path (tf2_ros, or its stand-in where it is not installed)
#   bag replayer    data/bags/sim_rgbd (simulated RealSense topics + the camera pose on /tf +
#                   /clock); by default each frame
#                   waits for the node's answer (every frame is processed, even on a slow CPU);
#                   --realtime plays at 30 Hz and the node drops the frames it cannot keep up with
#   listener        prints the grasps the node publishes (base frame), writes the annotated debug
#                   images (with the best grasp's base-frame position) and grasps.csv to DIR
#                   (default out/demo)
# and exits 0 when the bag is done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="out/demo"
bag="data/bags/sim_rgbd"
min_quality=""
realtime=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --bag) bag="$2"; shift 2 ;;
    --min-quality) min_quality="$2"; shift 2 ;;
    --realtime) realtime=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

./scripts/setup_venv.sh
py=.venv/bin/python
mkdir -p "$out"
rm -f "$out"/grasps_*.png "$out"/grasps.csv

export FASTRTPS_DEFAULT_PROFILES_FILE="$root/config/fastdds_large_images.xml"
export FASTDDS_DEFAULT_PROFILES_FILE="$FASTRTPS_DEFAULT_PROFILES_FILE"
export RMW_FASTRTPS_USE_QOS_FROM_XML=0
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export PYTHONUNBUFFERED=1

if [ ! -f "$bag/metadata.yaml" ]; then
  echo "[demo] $bag not found: recording a synthetic scene into $out/bag" >&2
  rm -rf "$out/bag"
  $py -m dsc_grasp_ros.cli bag record-sim --synthetic --out "$out/bag" >&2
  bag="$out/bag"
fi
n_frames=$($py -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['rosbag2_bagfile_information']['message_count'])" "$bag/metadata.yaml")
# Grasps in the robot's base frame: the bag carries the camera pose on /tf (or /tf_static); the
# replayer publishes it and the node looks it up at each image stamp (tf2_ros, or its stand-in
# dsc_grasp_ros/devtools/tf2_standin.py where tf2_ros is not installed).
target_frame=$($py - "$bag" <<'PY'
import sys, yaml
from pathlib import Path
info = yaml.safe_load((Path(sys.argv[1]) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
topics = {t["topic_metadata"]["name"] for t in info.get("topics_with_message_count", [])}
from dsc_grasp_ros.devtools.bag import bag_metadata
base = bag_metadata(sys.argv[1]).get("base_frame", "")
print(base if base and topics & {"/tf", "/tf_static"} else "")
PY
)
if [ -n "$target_frame" ] && ! $py -c "import tf2_msgs.msg" 2>/dev/null; then
  echo "[demo] tf2_msgs is not installed (./scripts/setup_venv.sh builds it): poses stay in the camera frame" >&2
  target_frame=""
fi

node_args=(--ros-args --params-file config/dsc_grasp.yaml -p use_sim_time:=true -p diagnostics_period:=2.0
  -r color/image_raw:=/camera/camera/color/image_raw
  -r depth/image_raw:=/camera/camera/aligned_depth_to_color/image_raw
  -r color/camera_info:=/camera/camera/color/camera_info
  -p "target_frame:=$target_frame")
if [ -z "$min_quality" ] && [ "$($py -c "import json; print(json.load(open('models/dsc_graspnet_rgbd.json')).get('training', {}).get('epochs', 1))")" = "0" ]; then
  echo "[demo] the shipped model is an UNTRAINED placeholder: showing every candidate (min_quality 0)" >&2
  min_quality=0.0
fi
[ -n "$min_quality" ] && node_args+=(-p "min_quality:=$min_quality")

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

echo "[demo] grasp_node on $bag with the shipped model, grasps in frame ${target_frame:-(camera optical frame)} (log: $out/node.log)"
.venv/bin/grasp_node "${node_args[@]}" > "$out/node.log" 2>&1 &
pids+=($!)
$py -m dsc_grasp_ros.devtools.listener --out "$out" --timeout 600 --idle-exit 3 &
lis=$!
pids+=($lis)

replay_args=(--hz 30 --wait-subscribers 120 --tail 1.0)
[ "$realtime" = 0 ] && replay_args+=(--lockstep /grasp_node/grasp_candidates --lockstep-timeout 5)
$py -m dsc_grasp_ros.devtools.replay "$bag" "${replay_args[@]}"

rc=0
wait "$lis" || rc=$?
grep -E "loaded|tf2:|in [0-9.]+ fps" "$out/node.log" | tail -3 | sed 's/^/[node] /'
echo "[demo] annotated images and grasps.csv in $out/"
exit $rc
