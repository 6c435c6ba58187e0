#!/usr/bin/env bash
# Generate the tf2_msgs message package (TFMessage, TF2Error) into a venv that has the PyPI
# ROS 2 Jazzy wheels (tf2_msgs is not on PyPI), so that /tf and /tf_static can be published and
# subscribed over real DDS: the bag replayer publishes the bag's camera pose, the node's tf path
# (tf2_ros, or dsc_grasp_ros/devtools/tf2_standin.py here) receives it.
#
#   scripts/build_tf2_msgs.sh [VENV]      (default: .venv of the project; called by setup_venv.sh)
#
# Installs the pinned rosidl/ament_cmake build wheels (scripts/ros_interfaces/requirements.txt),
# runs rosidl_generate_interfaces with cmake + the system C/C++ compiler, installs into VENV.
# Cached: nothing is done when VENV/.tf2_msgs_stamp matches the sources and tf2_msgs imports.
# On a real ROS 2 install, use the distribution's ros-jazzy-tf2-msgs instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(cd "${1:-$root/.venv}" && pwd)"
py="$venv/bin/python"
src="$root/scripts/ros_interfaces/tf2_msgs"
req="$root/scripts/ros_interfaces/requirements.txt"
stamp="$venv/.tf2_msgs_stamp"
want="$(cat "$src/CMakeLists.txt" "$src/package.xml" "$src"/msg/*.msg "$req" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
check='from tf2_msgs.msg import TFMessage; from rclpy.serialization import serialize_message as s, deserialize_message as d; assert d(s(TFMessage()), TFMessage) == TFMessage()'
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && "$py" -c "$check" 2>/dev/null; then
  exit 0
fi
for tool in cmake cc c++; do
  command -v "$tool" >/dev/null || { echo "[tf2_msgs] $tool not found: install cmake and a C/C++ compiler (apt-get install cmake build-essential)" >&2; exit 1; }
done
t0=$(date +%s%N)
echo "[tf2_msgs] generating tf2_msgs into $venv (rosidl wheels from PyPI + cmake)" >&2
"$py" -m pip install -q --disable-pip-version-check -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
build="$venv/.build/tf2_msgs"
rm -rf "$build"; mkdir -p "$(dirname "$build")"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# CMAKE_PREFIX_PATH/AMENT_PREFIX_PATH: only the venv (a sourced ROS install must not mix in)
env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
  > "$build.log" 2>&1 || { tail -40 "$build.log" >&2; echo "[tf2_msgs] cmake configure failed (log: $build.log)" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >> "$build.log" 2>&1 || { tail -40 "$build.log" >&2; echo "[tf2_msgs] build failed (log: $build.log)" >&2; exit 1; }
cmake --install "$build" >> "$build.log" 2>&1 || { tail -20 "$build.log" >&2; echo "[tf2_msgs] install failed" >&2; exit 1; }
rm -rf "$build"
"$py" -c "$check" || { echo "[tf2_msgs] built, but 'import tf2_msgs.msg' does not work in $venv" >&2; exit 1; }
echo "$want" > "$stamp"
echo "[tf2_msgs] done in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
