"""The per-frame grasp detector: RGB-D frame + intrinsics -> metric grasps. No ROS imports.

``GraspDetector.detect`` runs four timed stages::

    preprocess   crop ROI, resize to 224, inpaint invalid depth, normalise   (CPU, numpy/OpenCV)
    network      DSC-GraspNet forward                                         (CUDA fp16 or CPU fp32)
    postprocess  Gaussian smoothing, angle decoding, top-k distinct peaks     (on the network's device)
    geometry     robust depth, deprojection, TCP orientation, metric width    (CPU, O(top_k))
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .backends import BACKENDS, DEFAULT_THREADS, CudaGraphRunner, compile_cpu, configure_threads, example_input, prepare_fast_model
from .clearance import FINGER_CHECK_HELP, FINGER_CHECK_MODES, FingerGeometry, fit_fingers, fitted_pose, image_closing_direction
from .conventions import PREDICTED_JAW_RATIO
from .geometry import DEPTH_STATISTICS, CameraIntrinsics, GeometryError, grasp_pose, tcp_orientation, undistort_pixel
from .model_io import ModelMetadata, load_model
from .postprocess import decode_grasps
from .preprocess import ROI, InputError, check_depth_units, check_frame, depth_to_metres, prepare, scale_roi, scene_depth
from .virtual_view import VIEW_HELP, VIEWS, down_view

__all__ = ["InferenceEngine", "DetectorConfig", "GraspDetector", "DetectionResult", "MetricGrasp", "resolve_device"]

log = logging.getLogger("dsc_grasp_ros.core.inference")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU. An explicit ``cuda`` without a GPU is an error."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available (use 'auto' or 'cpu')")
    return dev


class InferenceEngine:
    """Runs the network on one device with the backend chosen at load.

    ``backend`` (:data:`~dsc_grasp_ros.core.backends.BACKENDS`; ``auto`` takes ``$DSC_GRASP_BACKEND`` when set):

    * CPU, ``auto``/``compiled``: an inference copy with BatchNorm folded and the four heads merged
      (:func:`~dsc_grasp_ros.core.backends.prepare_fast_model`), ``torch.compile``-d for the first input
      shape (at :meth:`warmup`), with Inductor's caches on disk (:func:`~dsc_grasp_ros.core.backends.compile_cache_dir`,
      ``compile_cache`` overrides) so that a restart loads instead of compiling. When compiling
      fails or disagrees with eager, the folded copy runs eagerly and ``backend_info["reason"]``
      (also logged) says why. ``eager``: the folded copy, never compiled.
    * CUDA: the folded copy in fp16 (``fp16``) and channels_last; ``auto``/``compiled`` replay a
      captured CUDA graph per input shape (one pinned host->device copy per frame), ``eager`` runs
      it directly. The CUDA-graph path was written without a GPU and is NOT MEASURED yet.

    ``threads`` (CPU): torch intra-op threads (``None``/0 = torch's default, the core count);
    inter-op threads are set to 1 (the network has no parallel branches worth a second pool).
    ``engine.backend`` is what actually runs: ``eager``, ``compiled``, ``cuda`` or ``cuda_graph``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str = "auto",
        fp16: bool | None = None,
        backend: str = "auto",
        threads: int | None = None,
        compile_cache: str | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto" and os.environ.get("DSC_GRASP_BACKEND"):  # a deployment's (or the test suite's) choice
            backend = os.environ["DSC_GRASP_BACKEND"]
            if backend not in BACKENDS:
                raise ValueError(f"$DSC_GRASP_BACKEND must be one of {BACKENDS}, got {backend!r}")
        self.device = resolve_device(device)
        self.requested_backend = backend
        self.compile_cache = compile_cache
        self.threads = configure_threads(threads) if self.device.type == "cpu" else {}
        self.fp16 = (self.device.type == "cuda") if fp16 is None else bool(fp16 and self.device.type == "cuda")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.source_model = model.eval()
        fast = prepare_fast_model(model.eval()).to(self.device).eval()
        if self.device.type == "cuda":
            fast = fast.to(memory_format=torch.channels_last)
            if self.fp16:
                fast = fast.half()
        self._model = fast
        self._compiled = None  # CPU: the torch.compile-d model once prepare() built it ...
        self._compiled_shape = None  # ... for inputs of this shape (others run the eager copy)
        self._graphs: dict[tuple, CudaGraphRunner] = {}
        self.backend = "cuda" if self.device.type == "cuda" else "eager"
        self.backend_info: dict = {"requested": backend, "reason": ""}

    @property
    def model(self) -> torch.nn.Module:
        """The module that runs (before compiling). Assigning one replaces it and runs it eagerly."""
        return self._model

    @model.setter
    def model(self, module: torch.nn.Module):
        self._model = module
        self._compiled = self._compiled_shape = None
        self._graphs.clear()
        self.requested_backend = "eager"
        self.backend = "cuda" if self.device.type == "cuda" else "eager"

    def _fallback(self, reason: str):
        self.backend_info["reason"] = reason
        level = logging.WARNING if self.requested_backend == "compiled" else logging.INFO
        log.log(level, "falling back to %s: %s", self.backend, reason)

    def prepare(self, shape: tuple):
        """Build the fast path for inputs of ``shape`` (N, C, H, W): compile (CPU) or capture (CUDA)."""
        if self.requested_backend == "eager":
            return
        shape = tuple(int(s) for s in shape)
        if self.device.type == "cpu":
            if self._compiled is not None:
                return
            example = example_input(shape)
            compiled, info = compile_cpu(self._model, example, self.compile_cache)
            self.backend_info.update(info)
            if compiled is None:
                self._fallback(info["reason"])
            else:
                self._compiled, self._compiled_shape = compiled, shape
                self.backend = "compiled"
                log.info("compiled backend ready in %.1f s (cache %s)", info["compile_s"], info["cache_dir"])
        elif shape not in self._graphs:
            try:  # GPU path: NOT MEASURED (written without a GPU); any failure keeps the plain CUDA path
                self._graphs[shape] = CudaGraphRunner(self._model, shape, self.device, self.dtype)
                self.backend = "cuda_graph"
            except Exception as e:  # noqa: BLE001
                self._fallback(f"CUDA graph capture failed ({type(e).__name__}: {str(e)[:200]})")

    @torch.inference_mode()
    def __call__(self, x: np.ndarray | torch.Tensor):
        t = torch.as_tensor(x)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if self.device.type == "cpu":
            t = t.to(self.dtype)
            if self._compiled is not None and tuple(t.shape) == self._compiled_shape:
                return self._compiled(t)
            return tuple(o.float() for o in self._model(t))
        runner = self._graphs.get(tuple(t.shape))
        if runner is not None:
            return runner(t.float())
        t = t.to(self.device, non_blocking=True).to(self.dtype).contiguous(memory_format=torch.channels_last)
        return tuple(o.float() for o in self._model(t))

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def warmup(self, channels: int, size: tuple[int, int], n: int = 3):
        """Build the fast path for ``1 x channels x size`` inputs, then run ``n`` frames."""
        shape = (1, channels, *size)
        self.prepare(shape)
        x = torch.zeros(shape)
        for _ in range(n):
            self(x)
        self.synchronize()


@dataclass
class MetricGrasp:
    """A grasp in full-image pixels with its TCP pose in the camera optical frame."""

    u: float
    v: float
    angle: float
    width_px: float
    quality: float
    jaw_px: float
    position: np.ndarray  # (3,) metres
    orientation: np.ndarray  # (4,) quaternion x, y, z, w
    width_m: float
    depth_m: float
    #: Finger check: True = both fingers clear the object in the depth image (the grasp may have
    #: been moved for it), False = no clear placement (kept by ``finger_check`` prefer), None = not checked.
    fingers_clear: bool | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["position"] = [float(a) for a in self.position]
        d["orientation"] = [float(a) for a in self.orientation]
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}


@dataclass
class DetectionResult:
    grasps: list[MetricGrasp]
    rejected: list[str]
    timings: dict[str, float]
    roi: ROI
    #: one code per ``rejected`` entry: ``no_valid_depth``, ``depth_out_of_range``, ``too_wide``
    rejected_codes: list[str] = field(default_factory=list)
    _quality: torch.Tensor | None = field(default=None, repr=False)
    #: The virtual camera the network saw (``view`` down with a tilted approach), else None: ``roi``
    #: and the quality map are then in its image, the grasps in the real camera's.
    view: object | None = None

    @property
    def quality_map(self) -> np.ndarray | None:
        """Smoothed quality map in network pixels (copied from the device only when asked for)."""
        return None if self._quality is None else self._quality.detach().float().cpu().numpy()


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
    #: compiled on CPU (eager if compiling fails) / CUDA graphs on a GPU; ``eager``; ``compiled``.
    backend: str = "auto"
    #: CPU threads of the network (torch intra-op); 0 = torch's default (all cores). The README's
    #: performance section has the 1 vs 2 thread measurements on a busy machine.
    threads: int = DEFAULT_THREADS
    #: Folder of the compile cache (``None``: ``$TORCHINDUCTOR_CACHE_DIR`` or ``~/.cache/dsc_grasp_ros``).
    compile_cache: str | None = None
    #: Region of interest when ``roi`` is empty: ``scale`` = centred, sized from the intrinsics and
    #: the scene's median depth so that a metre spans the model's training ``net_px_per_metre``
    #: (clamped to the image); ``square`` = the largest centred square (the first releases).
    roi_mode: str = "scale"
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
                    "finger_max_turn_deg", "view")


#: Settings that take one of a few named values.
CHOICE_SETTINGS = {"finger_check": FINGER_CHECK_MODES, "view": VIEWS, "roi_mode": ROI_MODES, "depth_statistic": DEPTH_STATISTICS}


def _check_depth_range(min_depth: float, max_depth: float) -> None:
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


class GraspDetector:
    """Loads a model and turns aligned RGB-D frames into metric grasps (best first)."""

    def __init__(self, cfg: DetectorConfig | None = None, **overrides):
        cfg = cfg or DetectorConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        for name in RUNTIME_SETTINGS:
            setattr(cfg, name, validate_setting(name, getattr(cfg, name)))
        _check_depth_range(cfg.min_depth, cfg.max_depth)
        self.cfg = cfg
        model, self.meta = load_model(cfg.model_path, cfg.modality, "cpu")
        self.meta: ModelMetadata
        self.engine = InferenceEngine(model, cfg.device, cfg.fp16, cfg.backend, cfg.threads, cfg.compile_cache)
        self._roi_cache: dict[tuple, ROI] = {}
        self._view = self._view_key = None  # the last virtual view (view down) and what it was built for
        self.engine.warmup(self.meta.in_channels, (self.meta.input_size, self.meta.input_size))

    @property
    def modality(self) -> str:
        return self.meta.modality

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def update(self, **settings):
        """Change runtime settings (validated first; nothing changes if any value is invalid)."""
        clean = {k: validate_setting(k, v) for k, v in settings.items()}
        _check_depth_range(clean.get("min_depth", self.cfg.min_depth), clean.get("max_depth", self.cfg.max_depth))
        for k, v in clean.items():
            setattr(self.cfg, k, v)
        if {"roi", "roi_mode", "net_px_per_metre"} & set(clean):
            self._roi_cache.clear()

    @property
    def px_per_metre(self) -> float:
        """Network pixels per metre the ``scale`` ROI aims at: ``cfg.net_px_per_metre`` when set
        (> 0), else the model's training scale from its metadata."""
        return float(self.cfg.net_px_per_metre) if self.cfg.net_px_per_metre else self.meta.px_per_metre

    def roi_for(self, height: int, width: int, K=None, depth=None) -> ROI:
        """The region of interest of a ``height x width`` frame.

        A user ``roi`` box wins. Otherwise, with ``roi_mode='scale'`` and both ``K`` (3x3, 9 values
        or :class:`CameraIntrinsics`) and ``depth`` given: the centred ROI of
        :func:`~dsc_grasp_ros.core.preprocess.scale_roi` for the scene's median depth and the model's
        training scale (:attr:`px_per_metre`: ``cfg.net_px_per_metre`` or ``meta.px_per_metre``),
        kept while the size it asks for moves by less than 5 % (a steady crop on a steady scene);
        else the largest centred square.
        """
        size = self.meta.input_size
        key = (height, width)
        if self.cfg.roi is not None:
            if key not in self._roi_cache:
                self._roi_cache[key] = ROI.from_box(self.cfg.roi, height, width, size)
            return self._roi_cache[key]
        z = scene_depth(depth) if (self.cfg.roi_mode == "scale" and K is not None and depth is not None) else None
        if z is None:
            return ROI.centred_square(height, width, size)
        cam = K if isinstance(K, CameraIntrinsics) else CameraIntrinsics.from_K(K)
        ppm = self.px_per_metre
        want = scale_roi(height, width, cam.fx, cam.fy, z, ppm, size, quantum=1)
        old = self._roi_cache.get(("scale",) + key)
        if old is None or abs(want.w - old.w) > 0.05 * old.w or abs(want.h - old.h) > 0.05 * old.h:
            self._roi_cache[("scale",) + key] = scale_roi(height, width, cam.fx, cam.fy, z, ppm, size)
        return self._roi_cache[("scale",) + key]

    def _pose(self, u, v, angle, width_px, depth_full, cam, D, distortion_model, jaw_px):
        """``grasp_pose`` of a full-image grasp: ``(position, quaternion, width_m, z)``; ``D`` is None
        for an undistorted image (checked once per frame)."""
        c = self.cfg
        try:
            ray = undistort_pixel(u, v, cam.K, D, distortion_model) if D is not None else None
        except GeometryError as e:
            raise InputError(str(e), "bad_camera_info") from e
        return grasp_pose(u, v, angle, width_px, depth_full, cam, jaw_px, c.depth_statistic, c.depth_region_scale, ray)

    def _virtual_view(self, K: np.ndarray, a: np.ndarray, w: int, h: int):
        """:func:`~dsc_grasp_ros.core.virtual_view.down_view`, kept while the intrinsics, the approach and
        the image size stay the same (a fixed camera under a static transform: every frame), so
        that its warp tables are built once."""
        key = (w, h, K.tobytes(), a.tobytes())
        if self._view_key != key:
            self._view, self._view_key = down_view(K, a, w, h), key
        return self._view

    def detect(self, rgb: np.ndarray | None, depth: np.ndarray, K, D=None, distortion_model: str = "plumb_bob",
               approach=None) -> DetectionResult:
        """Detect grasps on one aligned frame.

        ``rgb``: HxWx3 uint8 RGB (may be ``None`` for a depth-only model); ``depth``: HxW uint16
        millimetres or float metres, aligned to ``rgb``; ``K``: 3x3 intrinsics; ``D``: distortion
        coefficients of the raw image (``CameraInfo.d``, model ``distortion_model``): each grasp
        pixel is undistorted before it is deprojected. Raises :class:`InputError` naming the problem
        for frames that cannot be processed (too small, depth in the wrong unit, ...). Grasps outside
        the working range ``min_depth``..``max_depth`` or wider than ``max_gripper_opening`` are
        rejected (``rejected`` / ``rejected_codes``).

        ``approach``: the direction (3-vector, camera optical frame) the gripper descends along, e.g.
        the robot base's -z for vertical grasps under a tilted camera; None = the optical axis. The
        poses then approach along it (TCP +z), their closing axis is the image axis made
        perpendicular to it, and the finger check measures heights along it.
        """
        if depth is None:
            raise InputError("a depth image is required: grasp poses are metric", "missing_image")
        if rgb is None and "r" in self.meta.channel_order:
            raise InputError(f"model modality {self.modality!r} needs a colour image", "missing_image")
        try:
            cam = CameraIntrinsics.from_K(K)
        except GeometryError as e:
            raise InputError(str(e), "bad_camera_info") from e
        a = None
        if approach is not None:
            a = np.asarray(approach, dtype=np.float64).reshape(3)
            if not np.all(np.isfinite(a)) or np.linalg.norm(a) < 1e-9:
                raise InputError(f"approach direction {a.tolist()} is not a finite non-zero vector", "bad_approach")
            a = a / np.linalg.norm(a)
            if a[2] <= 0.0:
                raise InputError(f"approach direction {a.round(3).tolist()} points towards the camera (its z must be > 0 "
                                 "in the optical frame)", "bad_approach")
        h, w = check_frame(rgb, depth)
        check_depth_units(depth)
        if a is not None and self.cfg.view == "down":
            try:
                view = self._virtual_view(cam.K, a, w, h)
            except ValueError as e:
                raise InputError(str(e), "bad_approach") from e
            if view is not None:
                t0 = time.perf_counter()
                depth_m, _ = depth_to_metres(depth)
                rgb_v, depth_v = view.warp(rgb, depth_m)
                t_warp = time.perf_counter() - t0
                res = self._detect_frame(rgb_v, depth_v, CameraIntrinsics.from_K(view.K), None, distortion_model, None)
                for g in res.grasps:  # virtual -> real camera
                    g.position, g.orientation = view.pose_to_real(g.position, g.orientation)
                    g.depth_m = float(g.position[2])
                    width_v = g.width_px
                    g.u, g.v, g.angle, g.width_px = view.grasp_to_real_image(g.position, g.orientation, g.width_m)
                    g.jaw_px *= g.width_px / width_v if width_v > 0 else 1.0
                res.timings["preprocess"] += t_warp
                res.view = view
                return res
        return self._detect_frame(rgb, depth, cam, D, distortion_model, a)

    def _detect_frame(self, rgb, depth, cam: CameraIntrinsics, D, distortion_model: str, a) -> DetectionResult:
        """:meth:`detect` on one (real or virtual) frame; ``a``: the checked unit approach or None."""
        c = self.cfg
        t0 = time.perf_counter()
        h, w = depth.shape[:2]
        roi = self.roi_for(h, w, cam, depth)
        x, prep = prepare(rgb, depth, roi, self.modality, self.meta.depth_ref)
        t1 = time.perf_counter()
        q, cos, sin, wid = self.engine(x)
        self.engine.synchronize()
        t2 = time.perf_counter()
        net_grasps, (qmap, _, _) = decode_grasps(
            q, cos, sin, wid, c.sigma, c.top_k, c.min_distance_px, c.min_quality, self.meta.width_scale_px, return_maps="quality"
        )
        t3 = time.perf_counter()
        grasps, rejected, codes = [], [], []
        fingers = c.fingers() if c.finger_check != "off" else None
        if D is not None and not np.any(np.asarray(D, dtype=np.float64)):
            D = None  # all-zero distortion: nothing to undistort
        blocked: list[MetricGrasp] = []
        for g in net_grasps:
            u, v, angle, width_px = roi.grasp_to_full(g.u, g.v, g.angle, g.width_px)
            _, _, _, jaw_px = roi.grasp_to_full(g.u, g.v, g.angle + math.pi / 2, g.width_px * PREDICTED_JAW_RATIO)
            try:
                pos, quat, width_m, z = self._pose(u, v, angle, width_px, prep.depth_full, cam, D, distortion_model, jaw_px)
            except GeometryError as e:
                rejected.append(str(e))
                codes.append("no_valid_depth")
                continue
            if not c.min_depth <= z <= c.max_depth:
                rejected.append(f"grasp at (u={u:.1f}, v={v:.1f}) has depth {z:.3f} m, outside the working range "
                                f"[{c.min_depth}, {c.max_depth}] m (min_depth/max_depth)")
                codes.append("depth_out_of_range")
                continue
            if a is not None:  # the approach given: the TCP descends along it, jaws across it
                quat = tcp_orientation(image_closing_direction(angle, a, cam), a)
            if fingers is not None:
                fit = fit_fingers(prep.depth_full, cam, u, v, angle, width_px, z, fingers, math.radians(c.finger_max_turn_deg), approach=a)
                if fit is None and c.finger_check == "require":
                    rejected.append(f"grasp at (u={u:.1f}, v={v:.1f}): no finger placement within the gripper's "
                                    f"{c.max_gripper_opening * 1000:.0f} mm opening is clear of the object in the depth image "
                                    f"(finger_check)")
                    codes.append("fingers_blocked")
                    continue
                if fit is None:  # prefer: kept unmoved, after every grasp whose fingers are clear
                    if width_m <= c.max_gripper_opening:
                        blocked.append(MetricGrasp(u, v, angle, width_px, g.quality, jaw_px, pos, quat, width_m, z, False))
                        continue
                elif fit.moved:  # (a 3-D fit reads the image without undistortion)
                    try:
                        u, v, angle, width_px, pos, quat, width_m, z = fitted_pose(
                            fit, cam, a, lambda *grasp: self._pose(*grasp, prep.depth_full, cam, D, distortion_model, jaw_px))
                    except GeometryError as e:
                        rejected.append(str(e))
                        codes.append("no_valid_depth")
                        continue
            if width_m > c.max_gripper_opening:
                rejected.append(f"grasp at (u={u:.1f}, v={v:.1f}) needs a {width_m * 1000:.0f} mm opening, wider than the "
                                f"gripper's {c.max_gripper_opening * 1000:.0f} mm (max_gripper_opening)")
                codes.append("too_wide")
                continue
            grasps.append(MetricGrasp(u, v, angle, width_px, g.quality, jaw_px, pos, quat, width_m, z,
                                      None if fingers is None else True))
        grasps += blocked
        t4 = time.perf_counter()
        timings = {"preprocess": t1 - t0, "network": t2 - t1, "postprocess": t3 - t2, "geometry": t4 - t3}
        return DetectionResult(grasps, rejected, timings, roi, codes, qmap)
