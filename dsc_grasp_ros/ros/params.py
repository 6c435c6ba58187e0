"""The node's parameters: one table with defaults, descriptions, ranges and when they may change.

``config/dsc_grasp.yaml`` lists the same parameters with the same defaults (a test checks);
the launch-file test checks every parameter a launch file sets is declared here.

``when`` says how a parameter takes effect:

* ``runtime``: changed on the fly through the validated parameter callback;
* ``reconfigure``: may only be set while the node is *unconfigured* (after ``cleanup``); the
  next ``configure`` uses it (model, device, modality, frames, QoS);
* ``startup``: read once when the node starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.clearance import FINGER_CHECK_MODES
from ..core.geometry import DEPTH_STATISTICS
from ..core.settings import BACKENDS, CLOSE_RANGE_MODES, DEFAULT_THREADS, PRECISIONS, ROI_MODES, SETTING_HELP, THREADS_RANGE, TUNABLE_RANGES, default
from ..core.tracking import TRACKER_HELP, TRACKER_RANGES, TrackerConfig
from ..core.virtual_view import VIEWS
from ..core.gripper import PRESET_NAMES
from ..core.workspace import SUPPORT_PLANE_MODES

#: ``mode`` choices: process every frame, or only when ~/plan_grasps asks.
MODES = ("stream", "request")
#: Array parameters and their element type (an empty list has no type of its own).
ARRAY_TYPES = {"static_camera_transform": "double", "roi": "integer", "tcp_transform": "double", "workspace_box": "double",
               "finger_joints": "string"}

RUNTIME, RECONFIGURE, STARTUP = "runtime", "reconfigure", "startup"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    when: str
    range: tuple | None = None  # (from, to, step) for numbers; step 0 = continuous
    choices: tuple | None = None  # allowed values for strings
    additional_constraints: str = ""


def _detector(name: str, **kw) -> ParamSpec:
    """A runtime parameter of the core detector: its default, description and range come from
    :mod:`dsc_grasp_ros.core.settings` (one source for the node, the CLI and the docs)."""
    value = default(name)
    if name == "roi" and value is None:
        value = []  # a ROS integer-array parameter: empty = unset
    rng = None
    if name in TUNABLE_RANGES:
        lo, hi = TUNABLE_RANGES[name]
        rng = (lo, hi, 1 if isinstance(value, int) else 0.0)
    return ParamSpec(name, value, SETTING_HELP[name], RUNTIME, range=rng, **kw)


def _tracker(name: str) -> ParamSpec:
    """A ``track_*`` parameter: default, description and range from :mod:`dsc_grasp_ros.core.tracking`."""
    value = getattr(TrackerConfig(), name)
    rng = None
    if name in TRACKER_RANGES:
        lo, hi = TRACKER_RANGES[name]
        rng = (lo, hi, 1 if isinstance(value, int) and not isinstance(value, bool) else 0.0)
    return ParamSpec(f"track_{name}", value, TRACKER_HELP[name], RUNTIME, range=rng)


PARAMS: tuple[ParamSpec, ...] = (
    # ---- lifecycle / startup
    ParamSpec("autostart", True, "Configure and activate the managed node on start (false: wait for lifecycle transitions).", STARTUP),
    # ---- model (reconfigure)
    ParamSpec("model_path", "", "Model weights (.pt state_dict with its .json metadata beside it); empty = the shipped models/dsc_graspnet_rgbd.pt. Loaded on configure.", RECONFIGURE),
    ParamSpec("device", "auto", "Inference device: auto (CUDA when available), cpu, cuda or cuda:N.", RECONFIGURE,
              additional_constraints="auto | cpu | cuda | cuda:N"),
    ParamSpec("modality", "", "Network input: empty = the model's own; rgbd, d or rgb (must match the model).", RECONFIGURE,
              choices=("", "rgbd", "d", "rgb")),
    ParamSpec("backend", "auto", "Network backend: auto (CPU: BatchNorm-folded model compiled with torch.compile, cached on disk "
              "under ~/.cache/dsc_grasp_ros so a restart skips the compile; eager when compiling fails; GPU: CUDA graphs), "
              "eager, compiled, or openvino (CPU: the network compiled by OpenVINO in seconds, with precision bf16 the fastest "
              "path measured on an AVX512-BF16 CPU; torch.compile when OpenVINO fails or is missing).", RECONFIGURE, choices=BACKENDS),
    ParamSpec("precision", "auto", "CPU arithmetic of the network: auto (bf16 where the CPU computes it natively, "
              "AVX512-BF16 or AMX, and OpenVINO runs the network; else fp32; $DSC_GRASP_PRECISION overrides), fp32, or bf16 "
              "(OpenVINO's bf16 hint, or bfloat16 autocast in torch; fp32 weights and maps; without native bf16: fp32 "
              "with a warning). CUDA runs fp16. /diagnostics' precision says which one runs.",
              RECONFIGURE, choices=PRECISIONS),
    ParamSpec("compile_in_background", True, "With a compiled backend: start serving grasps with the eager network at once "
              "and swap in the compiled one when it is ready (a cold compile takes minutes on a small CPU); false = "
              "configure waits for the compile. /diagnostics' backend_state says which one runs.", RECONFIGURE),
    ParamSpec("threads", DEFAULT_THREADS, "CPU threads of the network (torch intra-op threads); 0 = all cores. "
              "OpenMP waits passively (OMP_WAIT_POLICY=PASSIVE, set by the package), so 2 threads hold up when the "
              "robot PC's other processes (camera driver, MoveIt, rviz) load the CPU: README, Performance.", RECONFIGURE, range=(*THREADS_RANGE, 1)),
    ParamSpec("workers", 1, "Inference threads: each takes the newest image pair not yet taken and runs the whole "
              "per-frame path (conversion, detector, transform) on it; results are published in stamp order (a frame "
              "that finishes after a newer one was published is dropped and counted as superseded). One model in "
              "memory. Each runs the network with the threads parameter's threads as given (the CPU then runs up to "
              "workers x threads of them): workers 2 with threads 1 is the setting for a 2-core CPU with the compiled or "
              "eager backend; with openvino keep 1 (docs/ros.md, Threads and backend).",
              RECONFIGURE, range=(1, 4, 1)),
    # ---- frames
    ParamSpec("target_frame", "", "Frame the grasps are published in (the robot base, e.g. panda_link0); empty = the camera's optical frame.", RECONFIGURE),
    ParamSpec("static_camera_transform", [], "Fixed pose of the camera optical frame in target_frame as [x, y, z, qx, qy, qz, qw] "
              "(hand-eye calibration); empty = look the transform up with tf2 at each image stamp.", RECONFIGURE,
              additional_constraints="empty or 7 finite numbers with a non-zero quaternion"),
    ParamSpec("tf_timeout", 0.05, "How long (s) the inference thread waits for the camera->target transform at the image stamp before skipping the frame.",
              RUNTIME, range=(0.0, 1.0, 0.0)),
    # ---- inputs
    ParamSpec("sync_tolerance", 0.0, "Largest color/depth stamp difference (s) that still pairs two frames; 0 = exact stamps (RealSense aligned depth).",
              RUNTIME, range=(0.0, 0.1, 0.0)),
    ParamSpec("qos_reliability", "best_effort", "Reliability of the image and camera_info subscriptions: best_effort (sensor data) or reliable.",
              RECONFIGURE, choices=("best_effort", "reliable")),
    ParamSpec("qos_depth", 5, "History depth of the input subscriptions (the node keeps only the newest matched frame anyway).",
              RECONFIGURE, range=(1, 100, 1)),
    # ---- detector (runtime, validated by the core): default and description from core.settings
    _detector("roi", additional_constraints="empty or 4 integers, x, y >= 0, w, h >= 8, inside the image"),
    _detector("roi_mode", choices=ROI_MODES),
    _detector("close_range", choices=CLOSE_RANGE_MODES),
    _detector("net_px_per_metre", additional_constraints="0 (model metadata) or > 0"),
    _detector("sigma"),
    _detector("top_k"),
    _detector("min_distance_px"),
    _detector("min_quality"),
    _detector("depth_statistic", choices=DEPTH_STATISTICS),
    _detector("depth_region_scale"),
    # ---- plausibility limits (runtime): a grasp outside them is rejected and counted
    _detector("min_depth", additional_constraints="smaller than max_depth"),
    _detector("max_depth", additional_constraints="larger than min_depth"),
    _detector("max_gripper_opening"),
    ParamSpec("approach", "optical", "Direction the published grasps approach along (TCP +z): optical = the camera's optical "
              "axis; target_down = the -z axis of target_frame (a gripper that descends vertically under a tilted camera; "
              "the transform is then looked up before inference; with an empty target_frame: optical). The finger check "
              "measures along it.", RUNTIME, choices=("optical", "target_down")),
    _detector("view", choices=VIEWS),
    # ---- finger clearance check (runtime): the open fingers must reach past the object in the depth image
    _detector("finger_check", choices=FINGER_CHECK_MODES),
    _detector("finger_max_turn_deg"),
    _detector("finger_thickness"),
    _detector("finger_width"),
    _detector("finger_depth"),
    _detector("finger_pad"),
    _detector("opening_margin"),
    # ---- grasp tracking (runtime): ~/grasp follows one target across frames
    ParamSpec("tracking", True, "Publish on ~/grasp the tracked target (association, hysteresis, smoothing, hold; "
              "~/grasp_target_state says its id, state and age) instead of each frame's best grasp; ~/grasps stays the raw "
              "best-first list.", RUNTIME),
    *(_tracker(name) for name in TRACKER_HELP),
    # ---- the robot's gripper (runtime): TCP frame, finger postures and execution distances of moveit_msgs/Grasp
    ParamSpec("gripper", "franka_hand", "Gripper preset (core/gripper.py; docs/ros.md has each one's numbers and sources): its "
              "TCP frame, finger joints, width-to-joint mapping and execution distances. Set max_gripper_opening to its stroke "
              "too (franka_hand 0.08, robotiq_2f_85 0.085, robotiq_2f_140 0.14).", RUNTIME, choices=PRESET_NAMES),
    ParamSpec("tcp_transform", [], "Pose of your robot's TCP frame in our grasp frame (+z approach, jaws along y) as "
              "[x, y, z, qx, qy, qz, qw]: the poses of ~/grasp, ~/grasps and ~/moveit_grasps are of that frame; empty = the "
              "preset's (e.g. [0, 0, -0.1034, 0, 0, -0.3827, 0.9239] for panda_link8 with the Franka hand).", RUNTIME,
              additional_constraints="empty or 7 finite numbers with a non-zero quaternion"),
    ParamSpec("finger_joints", [], "Finger joint names of the postures in ~/moveit_grasps; empty = the preset's (one value "
              "per joint, mapped linearly from the width).", RUNTIME, additional_constraints="empty or as many names as the preset has joints"),
    ParamSpec("grasp_depth", -1.0, "How far (m) past the observed surface the TCP closes (moveit_msgs/Grasp grasp_pose; never "
              "deeper than where the fingertips stay above a fitted support plane); -1 = the preset's (0.025).", RUNTIME,
              range=(-1.0, 0.1, 0.0)),
    ParamSpec("approach_distance", -1.0, "Pre-grasp distance (m) back along the approach (pre_grasp_approach); -1 = the preset's.",
              RUNTIME, range=(-1.0, 0.5, 0.0)),
    ParamSpec("retreat_distance", -1.0, "Retreat distance (m) after closing (post_grasp_retreat: along the support plane's normal "
              "when one is fitted, else back along the approach); -1 = the preset's.", RUNTIME, range=(-1.0, 0.5, 0.0)),
    # ---- modes and the GraspPlanning service
    ParamSpec("mode", "stream", "stream: every image pair is processed and published; request: no inference until "
              "~/plan_grasps (moveit_msgs/srv/GraspPlanning) asks, answered from the next fresh image pair.", RUNTIME,
              choices=MODES),
    ParamSpec("plan_timeout", 2.0, "How long (s) ~/plan_grasps waits for a fresh image pair (and its grasps) before answering "
              "TIMED_OUT.", RUNTIME, range=(0.1, 60.0, 0.0)),
    ParamSpec("publish_moveit_grasps", True, "Publish each frame's grasps as moveit_msgs/Grasp on ~/moveit_grasps (best first).", RUNTIME),
    # ---- workspace and objects (runtime): grasps outside are dropped and counted (/diagnostics dropped_*)
    ParamSpec("workspace_box", [], "Axis-aligned box [x_min, y_min, z_min, x_max, y_max, z_max] (m) in target_frame (the "
              "camera frame when target_frame is empty); grasps whose centre is outside are dropped; empty = no box.", RUNTIME,
              additional_constraints="empty or 6 finite numbers, each minimum below its maximum"),
    ParamSpec("support_plane", "off", "Support plane (table) fitted in each depth image: off; clamp = grasps go no deeper than "
              "where the fingertips stay above it, the retreat is along its normal; remove = clamp, and grasps on the plane "
              "(centre within support_margin) are dropped.", RUNTIME, choices=SUPPORT_PLANE_MODES),
    ParamSpec("support_margin", 0.01, "Grasps whose centre is closer than this (m) to the fitted support plane are on it (support_plane remove).",
              RUNTIME, range=(0.0, 0.1, 0.0)),
    ParamSpec("use_object_masks", False, "Read instance masks (~/object_masks: a label image aligned with the colour image, 0 = "
              "background, k = object k, mono8/mono16/32SC1, the colour image's stamp): grasps get the object under their "
              "centre (ids '1', '2', ...), grasps on the background are dropped, at most grasps_per_object per object; "
              "GraspPlanning's target.id picks one object.", RUNTIME),
    ParamSpec("grasps_per_object", 1, "With object masks: the best grasps kept per object (0 = all).", RUNTIME, range=(0, 100, 1)),
    ParamSpec("mask_timeout", 0.3, "How long (s) a frame waits for the instance mask with its stamp (segmenters run behind the camera).",
              RUNTIME, range=(0.0, 5.0, 0.0)),
    # ---- outputs
    ParamSpec("publish_markers", True, "Publish ~/markers (gripper glyphs coloured by quality).", RUNTIME),
    ParamSpec("diagnostics_period", 5.0, "Period (s) of the summary log line and the /diagnostics status.", RECONFIGURE, range=(0.1, 3600.0, 0.0)),
    ParamSpec("warn_throttle", 5.0, "Smallest interval (s) between two warnings of the same kind.", RUNTIME, range=(0.0, 3600.0, 0.0)),
)

BY_NAME = {p.name: p for p in PARAMS}
#: the parameters that are core detector settings (changed on the detector at runtime)
DETECTOR_RUNTIME = tuple(n for n in SETTING_HELP if n in BY_NAME)


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


def validate_static_transform(value, name: str = "static_camera_transform") -> str | None:
    """Reason the value is not a usable ``static_camera_transform`` (or ``tcp_transform``), or None."""
    v = list(value or [])
    if not v:
        return None
    if len(v) != 7:
        return f"{name} needs 7 numbers [x, y, z, qx, qy, qz, qw], got {len(v)}"
    if not all(math.isfinite(float(x)) for x in v):
        return f"{name} has non-finite values: {v}"
    if math.sqrt(sum(float(x) ** 2 for x in v[3:])) < 1e-6:
        return f"{name} quaternion is zero"
    return None


def validate_roi(value) -> str | None:
    v = list(value or [])
    if not v:
        return None
    if len(v) != 4:
        return f"roi needs 4 integers [x, y, w, h], got {len(v)}: {v}"
    if v[2] < 8 or v[3] < 8 or v[0] < 0 or v[1] < 0:
        return f"roi {v} needs x, y >= 0 and w, h >= 8"
    return None


def validate_device(value: str) -> str | None:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return None
    return f"device {value!r} is not one of auto, cpu, cuda, cuda:N"


def validate(name: str, value) -> str | None:
    """Node-side checks beyond the descriptor ranges (the core validates detector values too)."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None
    if spec.choices is not None and value not in spec.choices:
        return f"{name} must be one of {list(spec.choices)}, got {value!r}"
    if name == "static_camera_transform":
        return validate_static_transform(value)
    if name == "roi":
        return validate_roi(value)
    if name == "device":
        return validate_device(value)
    if name == "tcp_transform":
        return validate_static_transform(value, name)
    if name == "workspace_box":
        from ..core.workspace import WorkspaceBox, WorkspaceError

        try:
            WorkspaceBox.from_list(list(value or []))
        except WorkspaceError as e:
            return str(e)
    if name == "finger_joints" and any(not str(j).strip() for j in (value or [])):
        return f"finger_joints has an empty name: {list(value)}"
    return None


def descriptor(spec: ParamSpec):
    """rcl_interfaces ParameterDescriptor with description and range for ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER, float: ParameterType.PARAMETER_DOUBLE,
             str: ParameterType.PARAMETER_STRING}
    if spec.name in ARRAY_TYPES:
        ptype = {"double": ParameterType.PARAMETER_DOUBLE_ARRAY, "integer": ParameterType.PARAMETER_INTEGER_ARRAY,
                 "string": ParameterType.PARAMETER_STRING_ARRAY}[ARRAY_TYPES[spec.name]]
    else:
        ptype = types[type(spec.default)]
    when = {RUNTIME: "Changeable at runtime.", RECONFIGURE: "Set while unconfigured; takes effect on configure.",
            STARTUP: "Read at startup."}[spec.when]
    d = ParameterDescriptor(name=spec.name, type=ptype, description=f"{spec.description} {when}")
    constraints = []
    if spec.choices is not None:
        constraints.append("one of: " + ", ".join(repr(c) for c in spec.choices))
    if spec.additional_constraints:
        constraints.append(spec.additional_constraints)
    d.additional_constraints = "; ".join(constraints)
    if spec.range is not None:
        lo, hi, step = spec.range
        if ptype == ParameterType.PARAMETER_INTEGER:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(step))]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=float(step))]
    return d
