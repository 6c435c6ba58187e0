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

from ..core.geometry import DEPTH_STATISTICS
from ..core.backends import BACKENDS, DEFAULT_THREADS, THREADS_RANGE
from ..core.clearance import FINGER_CHECK_HELP, FINGER_CHECK_MODES
from ..core.virtual_view import VIEW_HELP, VIEWS
from ..core.inference import ROI_MODE_HELP, ROI_MODES, TUNABLE_RANGES

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
              "eager, or compiled.", RECONFIGURE, choices=BACKENDS),
    ParamSpec("threads", DEFAULT_THREADS, "CPU threads of the network (torch intra-op threads); 0 = all cores. "
              "OpenMP waits passively (OMP_WAIT_POLICY=PASSIVE, set by the package), so 2 threads hold up when the "
              "robot PC's other processes (camera driver, MoveIt, rviz) load the CPU: README, Performance.", RECONFIGURE, range=(*THREADS_RANGE, 1)),
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
    # ---- detector (runtime, validated by the core)
    ParamSpec("roi", [], "Region of interest [x, y, w, h] in full-image pixels; empty = chosen by roi_mode.", RUNTIME,
              additional_constraints="empty or 4 integers, x, y >= 0, w, h >= 8, inside the image"),
    ParamSpec("roi_mode", "scale", "How the region of interest is chosen when roi is empty: "
              + "; ".join(f"{m} = {ROI_MODE_HELP[m]}" for m in ROI_MODES) + ".", RUNTIME, choices=ROI_MODES),
    ParamSpec("net_px_per_metre", 0.0, "Network pixels per metre (at the scene's median depth) the scale ROI aims at; "
              "0 = the model's metadata value (the scale it was trained at). Larger values crop tighter (objects look "
              "bigger to the network). Used only with roi_mode scale and an empty roi.", RUNTIME,
              range=(*TUNABLE_RANGES["net_px_per_metre"], 0.0), additional_constraints="0 (model metadata) or > 0"),
    ParamSpec("sigma", 2.0, "Gaussian smoothing (network pixels) of the quality map before peak finding; 0 = none.", RUNTIME,
              range=(*TUNABLE_RANGES["sigma"], 0.0)),
    ParamSpec("top_k", 5, "Largest number of grasps published per frame.", RUNTIME, range=(*TUNABLE_RANGES["top_k"], 1)),
    ParamSpec("min_distance_px", 10.0, "Smallest distance (network pixels) between two published grasp centres.", RUNTIME,
              range=(*TUNABLE_RANGES["min_distance_px"], 0.0)),
    ParamSpec("min_quality", 0.2, "Grasps with a smaller quality are not published.", RUNTIME, range=(*TUNABLE_RANGES["min_quality"], 0.0)),
    ParamSpec("depth_statistic", "median", "How the grasp depth is taken from the valid depth pixels around the grasp centre.", RUNTIME,
              choices=DEPTH_STATISTICS),
    ParamSpec("depth_region_scale", 0.5, "Size of the depth window at the grasp relative to the grasp rectangle.", RUNTIME,
              range=(*TUNABLE_RANGES["depth_region_scale"], 0.0)),
    # ---- plausibility limits (runtime): a grasp outside them is rejected and counted
    ParamSpec("min_depth", 0.1, "Nearest grasp depth (m) published; nearer candidates are rejected (D4xx min-Z about 0.11-0.16 m; D405: 0.07).",
              RUNTIME, range=(*TUNABLE_RANGES["min_depth"], 0.0), additional_constraints="smaller than max_depth"),
    ParamSpec("max_depth", 3.0, "Farthest grasp depth (m) published; farther candidates are rejected (D435 ideal range ends at 3 m).",
              RUNTIME, range=(*TUNABLE_RANGES["max_depth"], 0.0), additional_constraints="larger than min_depth"),
    ParamSpec("max_gripper_opening", 0.08, "Widest opening (m) the gripper can make; wider grasps are rejected (Franka/Panda hand: 0.08).",
              RUNTIME, range=(*TUNABLE_RANGES["max_gripper_opening"], 0.0)),
    ParamSpec("approach", "optical", "Direction the published grasps approach along (TCP +z): optical = the camera's optical "
              "axis; target_down = the -z axis of target_frame (a gripper that descends vertically under a tilted camera; "
              "the transform is then looked up before inference; with an empty target_frame: optical). The finger check "
              "measures along it.", RUNTIME, choices=("optical", "target_down")),
    ParamSpec("view", "camera", "What the network sees: " + "; ".join(f"{m} = {VIEW_HELP[m]}" for m in VIEWS)
              + ". down needs approach target_down; /diagnostics' roi is then the virtual camera's.", RUNTIME, choices=VIEWS),
    # ---- finger clearance check (runtime): the open fingers must reach past the object in the depth image
    ParamSpec("finger_check", "prefer", "Finger clearance check on the depth image: "
              + "; ".join(f"{m} = {FINGER_CHECK_HELP[m]}" for m in FINGER_CHECK_MODES)
              + ". A grasp is moved (centre along its closing axis, opening, and up to finger_max_turn_deg of turn) "
              "to the nearest placement where both fingers clear the object.", RUNTIME, choices=FINGER_CHECK_MODES),
    ParamSpec("finger_max_turn_deg", 60.0, "Largest turn (degrees) of a grasp's closing axis about its centre that the finger "
              "check may make when the network's axis has no clear placement (10-degree steps); 0 = never turn.", RUNTIME,
              range=(*TUNABLE_RANGES["finger_max_turn_deg"], 0.0)),
    ParamSpec("finger_thickness", 0.010, "Extent (m) of one finger along the closing axis (Franka/Panda hand: 0.01).", RUNTIME,
              range=(*TUNABLE_RANGES["finger_thickness"], 0.0)),
    ParamSpec("finger_width", 0.020, "Extent (m) of one finger across the closing axis (Franka/Panda hand: 0.02).", RUNTIME,
              range=(*TUNABLE_RANGES["finger_width"], 0.0)),
    ParamSpec("finger_depth", 0.020, "How far (m) beyond the grasp surface the fingertips must reach (less for objects lower than that: "
              "three quarters of their height above the surface beside them).", RUNTIME, range=(*TUNABLE_RANGES["finger_depth"], 0.0)),
    ParamSpec("finger_pad", 0.003, "Free space (m) kept around each finger along the closing axis (depth noise, tracking error).",
              RUNTIME, range=(*TUNABLE_RANGES["finger_pad"], 0.0)),
    ParamSpec("opening_margin", 0.010, "Per-side margin (m) your controller adds to the published width when it opens the gripper "
              "before the descent; the finger check plans the opening width + 2 x margin (0 if the controller opens exactly the width).",
              RUNTIME, range=(*TUNABLE_RANGES["opening_margin"], 0.0)),
    # ---- outputs
    ParamSpec("publish_markers", True, "Publish ~/markers (gripper glyphs coloured by quality).", RUNTIME),
    ParamSpec("diagnostics_period", 5.0, "Period (s) of the summary log line and the /diagnostics status.", RECONFIGURE, range=(0.1, 3600.0, 0.0)),
    ParamSpec("warn_throttle", 5.0, "Smallest interval (s) between two warnings of the same kind.", RUNTIME, range=(0.0, 3600.0, 0.0)),
)

BY_NAME = {p.name: p for p in PARAMS}
DETECTOR_RUNTIME = ("roi", "roi_mode", "net_px_per_metre", "sigma", "top_k", "min_distance_px", "min_quality", "depth_statistic",
                    "depth_region_scale", "min_depth", "max_depth", "max_gripper_opening", "finger_check", "finger_max_turn_deg",
                    "finger_thickness", "finger_width", "finger_depth", "finger_pad", "opening_margin", "view")


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


def validate_static_transform(value) -> str | None:
    """Reason the value is not a usable ``static_camera_transform``, or None."""
    v = list(value or [])
    if not v:
        return None
    if len(v) != 7:
        return f"static_camera_transform needs 7 numbers [x, y, z, qx, qy, qz, qw], got {len(v)}"
    if not all(math.isfinite(float(x)) for x in v):
        return f"static_camera_transform has non-finite values: {v}"
    if math.sqrt(sum(float(x) ** 2 for x in v[3:])) < 1e-6:
        return "static_camera_transform quaternion is zero"
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
    return None


def descriptor(spec: ParamSpec):
    """rcl_interfaces ParameterDescriptor with description and range for ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER, float: ParameterType.PARAMETER_DOUBLE,
             str: ParameterType.PARAMETER_STRING}
    if spec.name == "static_camera_transform":
        ptype = ParameterType.PARAMETER_DOUBLE_ARRAY
    elif spec.name == "roi":
        ptype = ParameterType.PARAMETER_INTEGER_ARRAY
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
