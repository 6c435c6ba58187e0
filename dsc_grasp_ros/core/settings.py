"""The detector's settings: one table of defaults (:class:`DetectorConfig`), valid ranges and
choices, and the help text of each. The ROS node's parameters, the ``dsc-grasp`` CLI and the
node's YAML take their defaults and descriptions from here (tests check the YAML and the docs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clearance import FINGER_CHECK_HELP, FINGER_CHECK_MODES, FingerGeometry
from .geometry import DEPTH_STATISTICS
from .virtual_view import VIEW_HELP, VIEWS

#: ``auto``: compiled on CPU (eager when compiling fails), CUDA graphs on a GPU;
#: ``eager``: the plain module (BatchNorm folded on CPU); ``compiled``: as auto, but say loudly when it falls back;
#: ``openvino`` (CPU): the network compiled by OpenVINO (seconds, no cache), torch.compile when it fails.
BACKENDS = ("auto", "eager", "compiled", "openvino")
#: Default CPU threads of the network. With passive OpenMP waiting (set by this package) 2 threads
#: were as fast as 1 on the loaded 2-core machine and faster with one more core kept busy; with
#: spinning waits they collapsed (README, Performance: "Threads").
DEFAULT_THREADS = 2
#: ``fp32``; ``bf16``: convolutions in bfloat16 on CPUs that compute it natively (AVX512-BF16, AMX);
#: ``auto``: bf16 where that holds and the OpenVINO backend runs, else fp32
PRECISIONS = ("fp32", "bf16", "auto")
THREADS_RANGE = (0, 64)


@dataclass
class DetectorConfig:
    model_path: str | None = None
    device: str = "auto"
    modality: str | None = None
    roi: list | None = None
    sigma: float = 2.0
    top_k: int = 5
    min_distance_px: float = 10.0
    min_quality: float = 0.2
    depth_statistic: str = "median"
    depth_region_scale: float = 0.5
    #: Working range (m, along the optical axis): grasps whose depth is outside are rejected.
    #: Defaults for a RealSense D4xx: min-Z is about 0.11 m (D435) to 0.16 m (D415); Intel
    #: gives 0.3-3 m as the D435's ideal range, and depth error grows with z^2 beyond it.
    #: D405 users: min_depth 0.07 (its range is 7-50 cm).
    min_depth: float = 0.1
    max_depth: float = 3.0
    #: Widest opening (m) the gripper can make: wider grasps are rejected (Franka/Panda hand: 80 mm).
    max_gripper_opening: float = 0.08
    fp16: bool | None = None
    #: Network backend (:class:`InferenceEngine`): ``auto`` = ``$DSC_GRASP_BACKEND`` when set, else
    #: OpenVINO on CPU (torch.compile when OpenVINO is missing or fails, eager when that fails too) /
    #: CUDA graphs on a GPU; ``eager``; ``compiled`` (torch.compile); ``openvino``.
    backend: str = "auto"
    #: CPU threads of the network (torch intra-op); 0 = torch's default (all cores). The README's
    #: performance section has the 1 vs 2 thread measurements on a busy machine.
    threads: int = DEFAULT_THREADS
    #: CPU arithmetic of the network: ``fp32``, or ``bf16`` (convolutions in bfloat16: OpenVINO's bf16
    #: hint, or autocast in torch, on CPUs with AVX512-BF16 or AMX; elsewhere fp32, saying why), or
    #: ``auto`` (``$DSC_GRASP_PRECISION`` when set, else bf16 where the CPU has it and the backend is
    #: OpenVINO, else fp32). CUDA runs fp16 (``fp16``).
    precision: str = "auto"
    #: Compile in a background thread at load (CPU, compiled backend): the first frames run the
    #: eager network instead of waiting for the compiler, the compiled one is swapped in when ready.
    background_compile: bool = False
    #: Folder of the compile cache (``None``: ``$TORCHINDUCTOR_CACHE_DIR`` or ``~/.cache/dsc_grasp_ros``).
    compile_cache: str | None = None
    #: Region of interest when ``roi`` is empty: ``scale`` = centred, sized from the intrinsics and
    #: the scene's median depth so that a metre spans the model's training ``net_px_per_metre``
    #: (clamped to the image); ``square`` = the largest centred square (the first releases).
    roi_mode: str = "scale"
    #: With the ``scale`` ROI, a camera closer than the training scale allows (a wrist camera near
    #: the object): ``pad`` = the ROI reaches past the image, its border repeated, so objects keep
    #: their training size; ``clamp`` = the ROI is clamped to the image and objects look larger.
    close_range: str = "clamp"
    #: Network pixels per metre the ``scale`` ROI aims at; 0 = the model's metadata value
    #: (``ModelMetadata.px_per_metre``, the scale it was trained at).
    net_px_per_metre: float = 0.0
    #: Finger clearance check (:mod:`~dsc_grasp_ros.core.clearance`): move each grasp (centre along its
    #: closing axis, opening, up to ``finger_max_turn_deg`` of turn) to the nearest placement where
    #: both open fingers reach past the object in the depth image. ``prefer``: grasps without one
    #: follow the others, unmoved; ``require``: they are rejected (``fingers_blocked``); ``off``.
    #: The finger sizes below are the Franka/Panda hand's.
    finger_check: str = "prefer"
    finger_thickness: float = 0.010  # m, one finger along the closing axis
    finger_width: float = 0.020  # m, one finger across the closing axis
    finger_depth: float = 0.020  # m the fingertips must reach beyond the grasp surface
    finger_pad: float = 0.003  # m of free space kept around each finger along the axis
    #: Per-side margin (m) the controller adds to the published width when it opens the gripper
    #: (the benchmark's executor: 0.01); the finger check plans the opening ``width + 2 x margin``.
    opening_margin: float = 0.010
    #: Finger check: when the network's closing axis has no clear placement, turn it about the grasp
    #: centre in 10-degree steps up to this many degrees (0: never turn).
    finger_max_turn_deg: float = 60.0
    #: What the network sees when ``detect`` is given an ``approach``: ``camera`` = the frame as it
    #: is; ``down`` = the frame re-projected into a virtual camera at the same place looking along
    #: the approach (:mod:`~dsc_grasp_ros.core.virtual_view`: a tilted camera's view turned into the
    #: straight-down view the networks trained on); grasps are mapped back to the real camera.
    view: str = "camera"

    def fingers(self) -> FingerGeometry:
        """The gripper as the finger clearance check sees it."""
        return FingerGeometry(self.finger_thickness, self.finger_width, self.finger_depth, self.finger_pad,
                              self.opening_margin, self.max_gripper_opening)


#: ``DetectorConfig.roi_mode`` choices (see :meth:`GraspDetector.roi_for`) and what each means.
ROI_MODES = ("scale", "square")
ROI_MODE_HELP = {
    "scale": "centred ROI sized from the camera intrinsics and the scene's median depth so that one metre spans "
             "net_px_per_metre network pixels (the model's training scale; clamped to the image)",
    "square": "the largest centred square of the image, resized to the network input (the first releases; "
              "the object scale then depends on the camera's distance and resolution)",
}

#: Runtime-tunable settings and their valid ranges (also used for ROS parameter descriptors).
TUNABLE_RANGES = {
    "sigma": (0.0, 20.0),
    "top_k": (1, 100),
    "min_distance_px": (0.0, 200.0),
    "min_quality": (0.0, 1.0),
    "depth_region_scale": (0.05, 2.0),
    "min_depth": (0.0, 20.0),
    "max_depth": (0.05, 50.0),
    "max_gripper_opening": (0.001, 1.0),
    "net_px_per_metre": (0.0, 10000.0),  # 0 = the model's metadata value
    "finger_thickness": (0.001, 0.1),
    "finger_width": (0.001, 0.1),
    "finger_depth": (0.0, 0.2),
    "finger_pad": (0.0, 0.05),
    "opening_margin": (0.0, 0.05),
    "finger_max_turn_deg": (0.0, 90.0),
}
#: Settings validated at construction and changeable by :meth:`GraspDetector.update`.
RUNTIME_SETTINGS = ("sigma", "top_k", "min_distance_px", "min_quality", "depth_statistic", "roi", "depth_region_scale",
                    "min_depth", "max_depth", "max_gripper_opening", "roi_mode", "net_px_per_metre", "finger_check",
                    "finger_thickness", "finger_width", "finger_depth", "finger_pad", "opening_margin",
                    "finger_max_turn_deg", "view", "close_range")


#: Settings that take one of a few named values.
CLOSE_RANGE_MODES = ("clamp", "pad")
CHOICE_SETTINGS = {"finger_check": FINGER_CHECK_MODES, "view": VIEWS, "roi_mode": ROI_MODES, "depth_statistic": DEPTH_STATISTICS,
                   "close_range": CLOSE_RANGE_MODES}


def check_depth_range(min_depth: float, max_depth: float) -> None:
    if not min_depth < max_depth:
        raise ValueError(f"min_depth={min_depth} must be smaller than max_depth={max_depth}")


def validate_setting(name: str, value):
    """Check one runtime setting; returns the normalised value or raises ValueError with a reason."""
    if name in TUNABLE_RANGES:
        lo, hi = TUNABLE_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name}={value} is outside [{lo}, {hi}]")
        return int(value) if name == "top_k" else float(value)
    if name in CHOICE_SETTINGS:
        choices = CHOICE_SETTINGS[name]
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        return value
    if name == "roi":
        if value is None or len(value) == 0:
            return None
        vals = list(value)
        if len(vals) != 4 or any(not isinstance(a, (int, float)) or a < 0 for a in vals) or vals[2] < 8 or vals[3] < 8:
            raise ValueError(f"roi must be empty or [x, y, w, h] with w, h >= 8 pixels, got {vals}")
        return [int(round(a)) for a in vals]
    raise ValueError(f"{name} cannot be changed at runtime")


#: What each user-facing detector setting does: the ROS parameter descriptions and the CLI's help.
SETTING_HELP = {
    "roi": "Region of interest [x, y, w, h] in full-image pixels; empty = chosen by roi_mode.",
    "roi_mode": "How the region of interest is chosen when roi is empty: "
                + "; ".join(f"{m} = {ROI_MODE_HELP[m]}" for m in ROI_MODES) + ".",
    "net_px_per_metre": "Network pixels per metre (at the scene's median depth) the scale ROI aims at; 0 = the model's "
                        "metadata value (the scale it was trained at). Larger values crop tighter (objects look bigger to the "
                        "network). Used only with roi_mode scale and an empty roi.",
    "close_range": "With roi_mode scale, a camera closer than the model's training scale allows (a wrist camera near the "
                   "object): pad = the ROI reaches past the image (its border repeated), so objects keep their training "
                   "size; clamp = the ROI is clamped to the image and objects look larger than in training.",
    "sigma": "Gaussian smoothing (network pixels) of the quality map before peak finding; 0 = none.",
    "top_k": "Largest number of grasps published per frame.",
    "min_distance_px": "Smallest distance (network pixels) between two published grasp centres.",
    "min_quality": "Grasps with a smaller quality are not published.",
    "depth_statistic": "How the grasp depth is taken from the valid depth pixels around the grasp centre.",
    "depth_region_scale": "Size of the depth window at the grasp relative to the grasp rectangle.",
    "min_depth": "Nearest grasp depth (m) published; nearer candidates are rejected (D4xx min-Z about 0.11-0.16 m; D405: 0.07).",
    "max_depth": "Farthest grasp depth (m) published; farther candidates are rejected (D435 ideal range ends at 3 m).",
    "max_gripper_opening": "Widest opening (m) the gripper can make; wider grasps are rejected (Franka/Panda hand: 0.08).",
    "view": "What the network sees: " + "; ".join(f"{m} = {VIEW_HELP[m]}" for m in VIEWS)
            + ". down needs approach target_down; /diagnostics' roi is then the virtual camera's.",
    "finger_check": "Finger clearance check on the depth image: "
                    + "; ".join(f"{m} = {FINGER_CHECK_HELP[m]}" for m in FINGER_CHECK_MODES)
                    + ". A grasp is moved (centre along its closing axis, opening, and up to finger_max_turn_deg of turn) "
                    "to the nearest placement where both fingers clear the object.",
    "finger_max_turn_deg": "Largest turn (degrees) of a grasp's closing axis about its centre that the finger check may make "
                           "when the network's axis has no clear placement (10-degree steps); 0 = never turn.",
    "finger_thickness": "Extent (m) of one finger along the closing axis (Franka/Panda hand: 0.01).",
    "finger_width": "Extent (m) of one finger across the closing axis (Franka/Panda hand: 0.02).",
    "finger_depth": "How far (m) beyond the grasp surface the fingertips must reach (less for objects lower than that: "
                    "three quarters of their height above the surface beside them).",
    "finger_pad": "Free space (m) kept around each finger along the closing axis (depth noise, tracking error).",
    "opening_margin": "Per-side margin (m) your controller adds to the published width when it opens the gripper before the "
                      "descent; the finger check plans the opening width + 2 x margin (0 if the controller opens exactly the width).",
}


def default(name: str):
    """The default of a detector setting (:class:`DetectorConfig`'s field default)."""
    return getattr(DetectorConfig(), name)
