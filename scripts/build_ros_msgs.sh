#!/usr/bin/env bash
# Generate the ROS 2 interface packages that are not on PyPI into a venv that has the PyPI ROS 2
# Jazzy wheels, so that they travel over real DDS like any other message:
#
#   tf2_msgs                  /tf and /tf_static (bag replayer -> the node's tf path: tf2_ros, or
#                             dsc_grasp_ros/devtools/tf2_standin.py here)
#   object_recognition_msgs   ObjectType (a field of moveit_msgs/CollisionObject)
#   moveit_msgs               Grasp, GripperTranslation, MoveItErrorCodes, CollisionObject and the
#                             GraspPlanning service that grasp_node serves (~/plan_grasps)
#
#   scripts/build_ros_msgs.sh [VENV]      (default: .venv of the project; called by setup_venv.sh)
#
# Each package is a folder of scripts/ros_interfaces/ (definitions copied verbatim from upstream; each
# CMakeLists.txt names its source release). Installs the pinned rosidl/ament_cmake build wheels
# (scripts/ros_interfaces/requirements.txt), runs rosidl_generate_interfaces with cmake + the system
# C/C++ compiler for each package in PACKAGES order (a package's dependencies come before it) and
# installs into VENV. Cached: nothing is done when VENV/.ros_msgs_stamp matches the sources and every
# package imports and round-trips a message through rclpy's serializer.
# On a real ROS 2 install, use the distribution's ros-jazzy-tf2-msgs, ros-jazzy-moveit-msgs and
# ros-jazzy-object-recognition-msgs instead (the folders carry a COLCON_IGNORE).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(cd "${1:-$root/.venv}" && pwd)"
py="$venv/bin/python"
interfaces="$root/scripts/ros_interfaces"
req="$interfaces/requirements.txt"
stamp="$venv/.ros_msgs_stamp"
#: package and the message (or service) it is checked with, dependencies first
PACKAGES=(tf2_msgs object_recognition_msgs moveit_msgs)
declare -A CHECK=(
  [tf2_msgs]="tf2_msgs.msg TFMessage"
  [object_recognition_msgs]="object_recognition_msgs.msg ObjectType"
  [moveit_msgs]="moveit_msgs.msg Grasp"
)
check_all() {
  local code="from rclpy.serialization import serialize_message as s, deserialize_message as d; import importlib"
  for pkg in "${PACKAGES[@]}"; do
    read -r mod cls <<< "${CHECK[$pkg]}"
    code+="; M = getattr(importlib.import_module('$mod'), '$cls'); assert d(s(M()), M) == M()"
  done
  code+="; from moveit_msgs.srv import GraspPlanning"
  "$py" -c "$code"
}
want="$( (for pkg in "${PACKAGES[@]}"; do
            find "$interfaces/$pkg" -type f ! -name COLCON_IGNORE | LC_ALL=C sort | xargs cat
          done; cat "$interfaces/pypi_wheels.cmake" "$req" "${BASH_SOURCE[0]}") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && check_all 2>/dev/null; then
  exit 0
fi
for tool in cmake cc c++; do
  command -v "$tool" >/dev/null || { echo "[ros_msgs] $tool not found: install cmake and a C/C++ compiler (apt-get install cmake build-essential)" >&2; exit 1; }
done
t0=$(date +%s%N)
echo "[ros_msgs] generating ${PACKAGES[*]} into $venv (rosidl wheels from PyPI + cmake)" >&2
"$py" -m pip install -q --disable-pip-version-check -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
for pkg in "${PACKAGES[@]}"; do
  build="$venv/.build/$pkg"
  rm -rf "$build"; mkdir -p "$(dirname "$build")"
  # CMAKE_PREFIX_PATH/AMENT_PREFIX_PATH: only the venv (a sourced ROS install must not mix in)
  env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH cmake -S "$interfaces/$pkg" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
    > "$build.log" 2>&1 || { tail -40 "$build.log" >&2; echo "[ros_msgs] $pkg: cmake configure failed (log: $build.log)" >&2; exit 1; }
  cmake --build "$build" -j "$(nproc)" >> "$build.log" 2>&1 || { tail -40 "$build.log" >&2; echo "[ros_msgs] $pkg: build failed (log: $build.log)" >&2; exit 1; }
  cmake --install "$build" >> "$build.log" 2>&1 || { tail -20 "$build.log" >&2; echo "[ros_msgs] $pkg: install failed" >&2; exit 1; }
  rm -rf "$build"
  echo "[ros_msgs] $pkg installed" >&2
done
check_all || { echo "[ros_msgs] built, but the generated packages do not import in $venv" >&2; exit 1; }
echo "$want" > "$stamp"
echo "[ros_msgs] done in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
