"""The per-frame grasp detector: RGB-D frame + intrinsics -> metric grasps. No ROS imports.

``GraspDetector.detect`` runs four timed stages::

    preprocess   crop ROI, resize to 224, inpaint invalid depth, normalise   (CPU, numpy/OpenCV)
    network      DSC-GraspNet forward                                         (CUDA fp16 or CPU fp32)
    postprocess  Gaussian smoothing, angle decoding, top-k distinct peaks     (on the network's device)
    geometry     robust depth, deprojection, TCP orientation, metric width    (CPU, O(top_k))
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .clearance import fit_fingers, fitted_pose, image_closing_direction
from .conventions import PREDICTED_JAW_RATIO
from .engine import InferenceEngine, resolve_device
from .geometry import CameraIntrinsics, GeometryError, check_intrinsics, grasp_pose, tcp_orientation, undistort_pixel
from .model_io import ModelMetadata, load_model
from .postprocess import decode_grasps
from .preprocess import ROI, InputError, check_depth_units, check_frame, depth_to_metres, prepare, scale_roi, scene_depth
from .settings import (  # noqa: F401 - the detector's settings, re-exported for its users
    CHOICE_SETTINGS, RUNTIME_SETTINGS, ROI_MODE_HELP, ROI_MODES, TUNABLE_RANGES, DetectorConfig, check_depth_range, validate_setting,
)
from .virtual_view import down_view

__all__ = ["InferenceEngine", "DetectorConfig", "GraspDetector", "DetectionResult", "MetricGrasp", "resolve_device"]


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


class GraspDetector:
    """Loads a model and turns aligned RGB-D frames into metric grasps (best first).

    Threads: :meth:`detect` may run on several threads at once on one detector (one model in
    memory; torch releases the GIL in the network). What a frame changes in the detector, the ROI
    cache and the virtual view built for the last intrinsics and approach, is guarded by a lock of
    its own; the network (:class:`~dsc_grasp_ros.core.engine.InferenceEngine`) keeps no state per
    call. :meth:`update` changes the settings every ``detect`` reads: it must not run while a
    ``detect`` does (the ROS node holds a readers-writer lock: detects share it, an update takes it
    alone).
    """

    def __init__(self, cfg: DetectorConfig | None = None, **overrides):
        cfg = cfg or DetectorConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        for name in RUNTIME_SETTINGS:
            setattr(cfg, name, validate_setting(name, getattr(cfg, name)))
        check_depth_range(cfg.min_depth, cfg.max_depth)
        self.cfg = cfg
        model, self.meta = load_model(cfg.model_path, cfg.modality, "cpu")
        self.meta: ModelMetadata
        self.engine = InferenceEngine(model, cfg.device, cfg.fp16, cfg.backend, cfg.threads, cfg.compile_cache, cfg.precision)
        self._roi_cache: dict[tuple, ROI] = {}
        self._view: tuple | None = None  # (what it was built for, the last virtual view (view down))
        self._cache_lock = threading.Lock()  # the ROI cache and the virtual view: changed by detect() on any thread
        self.engine.warmup(self.meta.in_channels, (self.meta.input_size, self.meta.input_size), background=cfg.background_compile)

    @property
    def modality(self) -> str:
        return self.meta.modality

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def update(self, **settings):
        """Change runtime settings (validated first; nothing changes if any value is invalid)."""
        clean = {k: validate_setting(k, v) for k, v in settings.items()}
        check_depth_range(clean.get("min_depth", self.cfg.min_depth), clean.get("max_depth", self.cfg.max_depth))
        for k, v in clean.items():
            setattr(self.cfg, k, v)
        if {"roi", "roi_mode", "net_px_per_metre", "close_range"} & set(clean):
            with self._cache_lock:
                self._roi_cache.clear()

    @property
    def px_per_metre(self) -> float:
        """Network pixels per metre the ``scale`` ROI aims at: ``cfg.net_px_per_metre`` when set
        (> 0), else the model's training scale from its metadata."""
        return float(self.cfg.net_px_per_metre) if self.cfg.net_px_per_metre else self.meta.px_per_metre

    def roi_for(self, height: int, width: int, K=None, depth=None, *, metres: bool = False) -> ROI:
        """The region of interest of a ``height x width`` frame.

        A user ``roi`` box wins. Otherwise, with ``roi_mode='scale'`` and both ``K`` (3x3, 9 values
        or :class:`CameraIntrinsics`) and ``depth`` given: the centred ROI of
        :func:`~dsc_grasp_ros.core.preprocess.scale_roi` for the scene's median depth and the model's
        training scale (:attr:`px_per_metre`: ``cfg.net_px_per_metre`` or ``meta.px_per_metre``),
        kept while the size it asks for moves by less than 5 % (a steady crop on a steady scene);
        else the largest centred square. ``metres``: ``depth`` is already in metres (invalid = 0).
        """
        size = self.meta.input_size
        key = (height, width)
        if self.cfg.roi is not None:
            with self._cache_lock:
                if key not in self._roi_cache:
                    self._roi_cache[key] = ROI.from_box(self.cfg.roi, height, width, size)
                return self._roi_cache[key]
        z = scene_depth(depth, metres=metres) if (self.cfg.roi_mode == "scale" and K is not None and depth is not None) else None
        if z is None:
            return ROI.centred_square(height, width, size)
        cam = K if isinstance(K, CameraIntrinsics) else CameraIntrinsics.from_K(K)
        ppm = self.px_per_metre
        pad = self.cfg.close_range == "pad"
        want = scale_roi(height, width, cam.fx, cam.fy, z, ppm, size, quantum=1, pad=pad)
        with self._cache_lock:  # compare and replace as one step (two threads' frames may race here)
            old = self._roi_cache.get(("scale",) + key)
            if old is None or abs(want.w - old.w) > 0.05 * old.w or abs(want.h - old.h) > 0.05 * old.h:
                self._roi_cache[("scale",) + key] = scale_roi(height, width, cam.fx, cam.fy, z, ppm, size, pad=pad)
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
        that its warp tables are built once. Key and view are one attribute, read and replaced under
        the cache lock: a thread never gets a view built for another thread's approach."""
        key = (w, h, K.tobytes(), a.tobytes())
        with self._cache_lock:
            if self._view is None or self._view[0] != key:
                self._view = (key, down_view(K, a, w, h))
            return self._view[1]

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
        try:
            check_intrinsics(cam.K, w, h)  # a focal length no lens has: refused before any work
        except GeometryError as e:
            raise InputError(str(e), "bad_camera_info") from e
        check_depth_units(depth)
        t0 = time.perf_counter()
        depth_m, _ = depth_to_metres(depth)  # the frame's one conversion: everything below reads metres
        t_convert = time.perf_counter() - t0
        if a is not None and self.cfg.view == "down":
            try:
                view = self._virtual_view(cam.K, a, w, h)
            except ValueError as e:
                raise InputError(str(e), "bad_approach") from e
            if view is not None:
                t0 = time.perf_counter()
                rgb_v, depth_v = view.warp(rgb, depth_m)
                t_warp = time.perf_counter() - t0 + t_convert
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
        res = self._detect_frame(rgb, depth_m, cam, D, distortion_model, a)
        res.timings["preprocess"] += t_convert
        return res

    def _detect_frame(self, rgb, depth_m, cam: CameraIntrinsics, D, distortion_model: str, a) -> DetectionResult:
        """:meth:`detect` on one (real or virtual) frame of depth in metres (invalid pixels 0);
        ``a``: the checked unit approach or None."""
        c = self.cfg
        t0 = time.perf_counter()
        h, w = depth_m.shape[:2]
        roi = self.roi_for(h, w, cam, depth_m, metres=True)
        x, prep = prepare(rgb, depth_m, roi, self.modality, self.meta.depth_ref, metres=True)
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
