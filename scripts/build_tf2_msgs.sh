#!/usr/bin/env bash
# Kept for existing callers: tf2_msgs is one of the packages scripts/build_ros_msgs.sh generates.
exec "$(dirname "${BASH_SOURCE[0]}")/build_ros_msgs.sh" "$@"
