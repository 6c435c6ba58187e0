"""``grasp_node``: aligned RGB-D in, 6-DoF grasp poses in the robot frame out (a managed node).

A thin adapter: messages become numpy arrays (:mod:`.conversions`), the ROS-free
:class:`~dsc_grasp_ros.core.inference.GraspDetector` does all numerics, the results become messages.

Threads: the executor runs the subscriptions (they only pair color and depth by stamp and put
the newest pair into a one-item slot), the parameter/lifecycle services and the summary timer.
One inference thread takes the newest pair, converts, runs the detector, transforms and
publishes; a pair that is overwritten before the thread takes it is counted as dropped.

Topics (relative, remappable), parameters: see ``docs/ros.md`` and ``config/dsc_grasp.yaml``.
"""

from __future__ import annotations

import collections
import gc
import math
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from . import conversions as conv
from . import params as P
from .sync import LatestSlot, RateMeter, StageStats, StampPairer

# tf2: the real tf2_ros (package tf2_ros_py) on a ROS 2 install; it is not on PyPI, so elsewhere the
# stand-in (.tf2_standin, the same API subset over real DDS) when tf2_msgs is there (setup_venv.sh
# generates it). TF2_IMPL says which one the node uses (logged at configure).
try:
    import tf2_ros  # type: ignore

    TF2_IMPL = "tf2_ros"
except ImportError:  # pragma: no cover - depends on the machine
    try:
        import tf2_msgs.msg  # noqa: F401 - the stand-in's listener subscribes tf2_msgs/TFMessage

        from ..devtools import tf2_standin as tf2_ros

        TF2_IMPL = "tf2_standin (tf2_ros not installed)"
    except ImportError:
        tf2_ros = None
        TF2_IMPL = None
HAVE_TF2 = tf2_ros is not None

#: Counter names for skipped frames, in the order the summary lists them.
SKIP_REASONS = (
    "unsupported_encoding",
    "bad_image_size",
    "bad_image_step",
    "bad_image_data_size",
    "truncated_message",
    "empty_frame_id",
    "size_mismatch",
    "frame_id_mismatch",
    "missing_camera_info",
    "bad_camera_info",
    "camera_info_size_mismatch",
    "all_invalid_depth",
    "depth_wrong_unit",
    "image_too_small",
    "bad_roi",
    "bad_image",
    "missing_image",
    "no_valid_depth_at_grasp",
    "grasps_out_of_limits",
    "non_finite_pose",
    "tf_unavailable",
    "bad_approach",
    "invalid_input",
    "detector_error",
)


RCLError = _rclpy_impl.RCLError


class TransformUnavailable(RuntimeError):
    pass


class GraspNode(LifecycleNode):
    def __init__(self, node_name: str = "grasp_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self._guard_change_state()
        self._declare_parameters()
        self._configured = False
        self._active = False
        self._detector = None
        self._det_lock = threading.Lock()  # detect() vs update() from the parameter callback
        self._pub_lock = threading.Lock()  # publishing vs deactivate/cleanup
        self._pairer = StampPairer()
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._info: CameraInfo | None = None
        self._subs: list = []
        self._pubs: dict = {}
        self._timer = None
        self._tf_buffer = None
        self._tf_listener = None
        self._static_tf = None
        self._counters: collections.Counter = collections.Counter()
        self._last_warn: dict[str, float] = {}
        self._stats = StageStats()
        self._in_rate = RateMeter()
        self._out_rate = RateMeter()
        self._processed = 0
        self._published = 0
        self._depth_count = 0
        self._pairs = 0
        self._debug_timings = False
        self._last_roi = None  # the ROI of the last processed frame (in /diagnostics)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ lifecycle service guard
    def _guard_change_state(self) -> None:
        """Answer ``success=false`` to a transition that does not exist in the current state.

        rclpy (7.1.x, Jazzy; checked against rclpy/lifecycle/node.py ``__on_change_state``) looks a
        transition *label* up safely but passes a transition *id* straight to
        ``trigger_transition_by_id``, whose ``RCLError: Transition is not registered`` escapes
        ``executor.spin()`` and kills the node. Launch ``ChangeState`` events and lifecycle managers
        send ids, so the service callback is wrapped: ids not offered by the current state are
        refused before rclpy sees them (and any RCLError left is turned into ``success=false``).
        """
        srv = getattr(self, "_service_change_state", None)
        if srv is None:  # enable_communication_interface=False: no service to guard
            return
        inner = srv.callback

        def on_change_state(req, resp):
            tid, label = req.transition.id, req.transition.label
            current = self._state_machine.current_state  # (id, label)
            available = {t[0]: t[1] for t in self._state_machine.available_transitions}
            if not label and tid not in available:
                self.get_logger().warning(
                    f"lifecycle transition id {tid} is not available in state {current[1]!r} "
                    f"(available: {', '.join(f'{i} {n}' for i, n in sorted(available.items())) or 'none'}); refused"
                )
                resp.success = False
                return resp
            try:
                return inner(req, resp)
            except RCLError as e:
                self.get_logger().warning(f"lifecycle transition {label or tid} refused in state {current[1]!r}: {e}")
                resp.success = False
                return resp

        srv.callback = on_change_state

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> None:
        """Declare every parameter with its descriptor. A value given at startup (params file,
        ``-p``) that rclpy refuses (wrong type, outside the descriptor's range) would raise out of the
        constructor and kill the process: the parameter gets its default instead, the refusal is
        logged as an error and kept in ``_bad_params``, and ``configure`` fails naming it until a valid
        value is set. An integer for a double parameter (``net_px_per_metre: 300`` in YAML) is taken
        as that double."""
        from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

        self._bad_params: dict[str, str] = {}
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        for spec in P.PARAMS:
            try:
                self._declare_one(spec)
                continue
            except (InvalidParameterTypeException, InvalidParameterValueException) as e:
                error = e
            given = overrides[spec.name].value if spec.name in overrides else None
            if isinstance(spec.default, float) and isinstance(given, int) and not isinstance(given, bool):
                try:
                    self._declare_one(spec, float(given))
                    continue
                except InvalidParameterValueException as e:
                    error = e
            self._declare_one(spec, ignore_override=True)
            self._bad_params[spec.name] = (f"parameter {spec.name}: the value {given!r} given at startup was refused ({error}); "
                                           f"it holds its default {spec.default!r} until a valid value is set")
            self.get_logger().error(self._bad_params[spec.name] + ": configure will fail until then")

    def _declare_one(self, spec, value=None, ignore_override: bool = False) -> None:
        desc = P.descriptor(spec)
        if isinstance(spec.default, list):
            # An empty list has no type: declare the type, then set the default if nothing
            # (or an empty YAML list, which reaches rclpy as "not set") overrode it.
            ptype = Parameter.Type.DOUBLE_ARRAY if spec.name == "static_camera_transform" else Parameter.Type.INTEGER_ARRAY
            self.declare_parameter(spec.name, ptype, desc, ignore_override=ignore_override)
            try:
                self.get_parameter(spec.name).value
            except rclpy.exceptions.ParameterUninitializedException:
                self.set_parameters([Parameter(spec.name, ptype, list(spec.default))])
        elif value is not None:
            self.declare_parameter(spec.name, value, desc, ignore_override=True)
        else:
            self.declare_parameter(spec.name, spec.default, desc, ignore_override=ignore_override)

    def _check_parameters(self) -> str | None:
        """Why the current parameters cannot be configured (naming the parameter), or None. Values
        from the params file never went through the set-parameters callback: checked here."""
        from ..core.inference import validate_setting

        if self._bad_params:
            return next(iter(self._bad_params.values()))
        for spec in P.PARAMS:
            reason = P.validate(spec.name, self._p(spec.name))
            if reason:
                return f"parameter {spec.name}: {reason}"
        for name in P.DETECTOR_RUNTIME:
            value = self._p(name)
            try:
                validate_setting(name, (value or None) if name == "roi" else value)
            except ValueError as e:
                return f"parameter {name}: {e}"
        if not self._p("min_depth") < self._p("max_depth"):
            return f"parameters min_depth={self._p('min_depth')} and max_depth={self._p('max_depth')}: min_depth must be smaller"
        return None

    def _p(self, name: str):
        v = self.get_parameter(name).value
        if name in ("roi", "static_camera_transform"):
            return list(v) if v is not None else []
        return v

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        detector_changes = {}
        for p in params:
            spec = P.BY_NAME.get(p.name)
            if spec is None:
                continue
            value = p.value
            if spec.when == P.STARTUP:
                return SetParametersResult(successful=False, reason=f"{p.name} is only read at startup")
            if spec.when == P.RECONFIGURE and self._configured:
                return SetParametersResult(
                    successful=False,
                    reason=f"{p.name} can only change while the node is unconfigured: "
                    "deactivate and clean up the node, set it, then configure and activate",
                )
            if spec.name in ("roi", "static_camera_transform") and value is None:
                value = []
            reason = P.validate(p.name, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            if p.name in P.DETECTOR_RUNTIME:
                detector_changes[p.name] = (list(value) or None) if p.name == "roi" else value
        if "min_depth" in detector_changes or "max_depth" in detector_changes:
            lo = detector_changes.get("min_depth", self._p("min_depth"))
            hi = detector_changes.get("max_depth", self._p("max_depth"))
            if not lo < hi:
                return SetParametersResult(successful=False, reason=f"min_depth={lo} must be smaller than max_depth={hi}")
        if detector_changes and self._detector is not None:
            try:
                with self._det_lock:
                    self._detector.update(**detector_changes)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=str(e))
        elif detector_changes:
            from ..core.inference import validate_setting

            try:
                for k, v in detector_changes.items():
                    validate_setting(k, v)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=str(e))
        for p in params:  # everything is valid: apply what the node itself holds
            self._bad_params.pop(p.name, None)
            if p.name == "sync_tolerance":
                self._pairer.tolerance_ns = int(round(p.value * 1e9))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from ..core.geometry import GeometryError, Transform
        from ..core.inference import DetectorConfig, GraspDetector
        from ..core.model_io import ModelError

        problem = self._check_parameters()
        if problem:
            self.get_logger().error(f"configure refused: {problem}")
            return TransitionCallbackReturn.FAILURE
        target = self._p("target_frame")
        static = self._p("static_camera_transform")
        self._static_tf = None
        if target and static:
            try:
                self._static_tf = Transform.from_list(static)
            except GeometryError as e:
                self.get_logger().error(f"static_camera_transform {static} is unusable: {e}")
                return TransitionCallbackReturn.FAILURE
        elif target:
            if not HAVE_TF2:
                self.get_logger().error(
                    f"target_frame is {target!r} but neither tf2_ros nor tf2_msgs (for the stand-in) is installed: "
                    "set static_camera_transform (camera optical frame in target_frame) or leave target_frame empty"
                )
                return TransitionCallbackReturn.FAILURE
            if self._tf_buffer is None:
                # ONE buffer for the node's life, on the node's clock: it follows sim time and clears on a
                # jump back (bag loops; tf2_ros_py needs ros2/geometry2#711, in Jazzy since late 2024). It is
                # kept over cleanup -> configure (its tf2_frames service would otherwise be created twice).
                self._tf_buffer = tf2_ros.Buffer(node=self)
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self, spin_thread=False)
            self.get_logger().info(f"tf2: {TF2_IMPL}, listening on /tf and /tf_static")

        cfg = DetectorConfig(
            model_path=self._p("model_path") or None,
            device=self._p("device"),
            modality=self._p("modality") or None,
            backend=self._p("backend"),
            threads=self._p("threads"),
            # the runtime detector settings, one list (params.DETECTOR_RUNTIME); roi: empty = none
            **{name: self._p(name) for name in P.DETECTOR_RUNTIME if name != "roi"},
            roi=self._p("roi") or None,
        )
        t0 = time.perf_counter()
        try:
            detector = GraspDetector(cfg)
        except (ModelError, ValueError, RuntimeError) as e:
            self.get_logger().error(f"cannot load the grasp model: {e}")
            self._release_tf()
            return TransitionCallbackReturn.FAILURE
        with self._det_lock:
            self._detector = detector
        self.get_logger().info(
            f"loaded {detector.meta.modality} model {cfg.model_path or '(shipped default)'} on {detector.device} "
            f"({detector.engine.backend} backend{', ' + str(detector.engine.threads.get('threads')) + ' threads' if detector.engine.threads else ''}"
            f"{'; ' + detector.engine.backend_info['reason'] if detector.engine.backend_info.get('reason') else ''}) "
            f"in {time.perf_counter() - t0:.2f} s; grasps in frame "
            f"{target or '(camera optical frame)'} via {'static_camera_transform' if self._static_tf else ('tf2' if target else 'identity')}; "
            f"ROI {self._roi_text(detector)}"
        )

        self._pubs = {
            "grasp": self.create_lifecycle_publisher(PoseStamped, "~/grasp", 10),
            "grasps": self.create_lifecycle_publisher(PoseArray, "~/grasps", 10),
            "candidates": self.create_lifecycle_publisher(PointCloud2, "~/grasp_candidates", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
            "debug": self.create_lifecycle_publisher(Image, "~/debug_image", 1),
        }
        # steady clock: the summary and /diagnostics keep coming while /clock stands still (use_sim_time
        # with a paused or finished bag); the rates they report are wall-clock rates anyway
        from rclpy.clock import Clock, ClockType

        self._timer = self.create_timer(float(self._p("diagnostics_period")), self._summary, clock=Clock(clock_type=ClockType.STEADY_TIME))
        from rclpy.logging import LoggingSeverity

        self._debug_timings = self.get_logger().get_effective_level() <= LoggingSeverity.DEBUG
        self._stop.clear()
        self._slot.reopen()
        self._worker = threading.Thread(target=self._work, name="grasp_inference", daemon=True)
        self._worker.start()
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        rel = ReliabilityPolicy.RELIABLE if self._p("qos_reliability") == "reliable" else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(self._p("qos_depth")), reliability=rel)
        self._pairer.clear()
        self._pairer.tolerance_ns = int(round(self._p("sync_tolerance") * 1e9))
        self._subs = [
            # raw=True: the images are read in place from their CDR bytes (conversions.parse_image_cdr)
            self.create_subscription(Image, "color/image_raw", self._on_color, qos, raw=True),
            self.create_subscription(Image, "depth/image_raw", self._on_depth, qos, raw=True),
            self.create_subscription(CameraInfo, "color/camera_info", self._on_info, qos),
        ]
        self._active = True
        self.get_logger().info(
            "active: listening on " + ", ".join(s.topic_name for s in self._subs) + f" ({self._p('qos_reliability')} QoS)"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._pub_lock:
            self._active = False
            for s in self._subs:
                self.destroy_subscription(s)
            self._subs = []
            self._slot.clear()
            self._pairer.clear()
            return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        self._stop.set()
        self._slot.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        self._worker = None
        with self._pub_lock:
            for pub in self._pubs.values():
                self.destroy_lifecycle_publisher(pub)
            self._pubs = {}
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._release_tf()
        with self._det_lock:
            had_cuda = self._detector is not None and self._detector.device.type == "cuda"
            self._detector = None
        self._last_roi = None
        gc.collect()
        if had_cuda:
            import torch

            torch.cuda.empty_cache()
        self._info = None
        self._last_warn.pop("distortion", None)  # tell again after the next configure
        self._configured = False

    # ------------------------------------------------------------------ callbacks (executor)
    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _image(self, raw: bytes, what: str):
        """Serialized Image -> message view, or None (frame skipped, counted) when it is unreadable:
        nothing raised here may escape into the executor (it would stop spin)."""
        try:
            return conv.parse_image_cdr(raw)
        except conv.MessageError as e:
            self._skip(e.reason, f"{what} image: {e}")
            return None
        except (ValueError, IndexError, UnicodeDecodeError):  # unknown encapsulation: let rclpy decode it
            pass
        try:
            return deserialize_message(raw, Image)
        except Exception as e:  # noqa: BLE001 - any decoding failure is a bad message, not a crash
            self._skip("truncated_message", f"{what} image cannot be deserialized ({len(raw)} bytes): {type(e).__name__}: {e}")
            return None

    def _on_color(self, raw: bytes) -> None:
        if self._active:
            msg = self._image(raw, "color")
            if msg is None:
                return
            self._in_rate.tick()
            self._push(self._pairer.add_color(conv.stamp_to_ns(msg.header.stamp), msg))

    def _on_depth(self, raw: bytes) -> None:
        if self._active:
            msg = self._image(raw, "depth")
            if msg is None:
                return
            self._depth_count += 1
            self._push(self._pairer.add_depth(conv.stamp_to_ns(msg.header.stamp), msg))

    def _push(self, pair) -> None:
        if pair is not None:
            self._pairs += 1
            self._slot.put(pair)

    # ------------------------------------------------------------------ inference thread
    def _work(self) -> None:
        while not self._stop.is_set():
            pair = self._slot.get(timeout=0.5)
            if pair is None or self._stop.is_set():
                continue
            try:
                self._process(pair)
            except Exception as e:  # noqa: BLE001 - the node must survive any frame
                self._skip("detector_error", f"unexpected error on frame {pair.stamp_ns * 1e-9:.3f}: {type(e).__name__}: {e}")

    def _warn(self, key: str, text: str, error: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= float(self._p("warn_throttle")):
            self._last_warn[key] = now
            n = self._counters[key]
            # (rclpy loggers must not change severity at one call site: two calls)
            if error:
                self.get_logger().error(f"{text} [{key}: {n} so far]")
            else:
                self.get_logger().warning(f"{text} [{key}: {n} so far]")

    def _skip(self, reason: str, text: str, error: bool = False) -> None:
        self._counters[reason] += 1
        self._warn(reason, f"frame skipped: {text}", error)

    def _process(self, pair) -> None:
        t_start = time.perf_counter()
        color, depth_msg, info = pair.color, pair.depth, self._info  # the newest CameraInfo
        image_header = conv.header_msg(color.header)
        stamp = image_header.stamp
        cam_frame = image_header.frame_id
        if not cam_frame:
            self._skip(
                "empty_frame_id",
                "the color image has an empty header.frame_id: the grasp pose would have no frame "
                "(set the camera driver's frame id, e.g. camera_color_optical_frame)",
                error=True,
            )
            return
        if depth_msg.header.frame_id != cam_frame:
            self._skip(
                "frame_id_mismatch",
                f"color frame_id {cam_frame!r} differs from depth frame_id {depth_msg.header.frame_id!r}: "
                "the depth must be aligned to the color camera",
                error=True,
            )
            return
        try:
            rgb = conv.color_to_rgb(color)
            depth = conv.depth_to_array(depth_msg)
            if rgb.shape[:2] != depth.shape[:2]:
                raise conv.MessageError(
                    "size_mismatch",
                    f"color ({color.width}x{color.height}) and depth ({depth_msg.width}x{depth_msg.height}) sizes differ: "
                    "subscribe to the depth aligned to color",
                )
            cam = conv.camera_info_intrinsics(info, color.width, color.height)
        except conv.MessageError as e:
            self._skip(e.reason, str(e))
            return
        t_conv = time.perf_counter()

        from ..core.preprocess import InputError

        T = approach = None
        looked_up = False
        if self._p("approach") == "target_down":  # the descent direction is needed before inference
            try:
                T = self._camera_to_target(cam_frame, stamp)
            except TransformUnavailable as e:
                self._skip("tf_unavailable", str(e))
                return
            looked_up = True
            if T is not None:  # target_frame's -z in the camera optical frame
                approach = T.matrix[:3, :3].T @ np.array([0.0, 0.0, -1.0])

        with self._det_lock:
            det = self._detector
            if det is None:
                return
            try:
                res = det.detect(None if det.modality == "d" else rgb, depth, cam.K, cam.D, cam.distortion_model,
                                 approach=approach)
            except InputError as e:
                self._skip(e.code, str(e))
                return
            self._last_roi = res.roi
        t_det = time.perf_counter()

        # The transform at the image stamp is looked up after inference: by then tf has usually
        # received it and the lookup does not wait.
        try:
            if not looked_up:
                T = self._camera_to_target(cam_frame, stamp)
        except TransformUnavailable as e:
            self._skip("tf_unavailable", str(e))
            return
        t_tf = time.perf_counter()

        if cam.D is not None and "distortion" not in self._last_warn:
            self._last_warn["distortion"] = time.monotonic()  # once per configure
            self.get_logger().info(f"CameraInfo has non-zero {cam.distortion_model} distortion: grasp pixels are undistorted before deprojection")
        elif cam.ignored_distortion and "distortion" not in self._last_warn:
            self._last_warn["distortion"] = time.monotonic()
            self.get_logger().warning(f"CameraInfo distortion model {cam.ignored_distortion!r} is not supported: its non-zero D is ignored "
                                      "(poses off-centre may be wrong; publish rectified images or plumb_bob/equidistant)")
        if res.rejected:
            self._counters["rejected_candidates"] += len(res.rejected)
            for code in res.rejected_codes:
                self._counters[f"rejected_{code}"] += 1
            if not res.grasps:
                limits = [r for r, c in zip(res.rejected, res.rejected_codes) if c != "no_valid_depth"]
                if limits:
                    self._skip("grasps_out_of_limits", f"all {len(res.rejected)} candidates rejected: {limits[0]}")
                else:
                    self._skip("no_valid_depth_at_grasp", f"all {len(res.rejected)} candidates rejected: {res.rejected[0]}")
                return
            self._warn("rejected_candidates", f"{len(res.rejected)} grasp candidates dropped: {res.rejected[0]}")

        if res.grasps and res.grasps[0].fingers_clear is False:  # finger_check prefer: no clear grasp this frame
            self._counters["best_grasp_fingers_blocked"] += 1
        rows, poses = [], []
        for g in res.grasps:
            pos, quat = np.asarray(g.position, float), np.asarray(g.orientation, float)
            if T is not None:
                pos, quat = T.apply_pose(pos, quat)
            vals = [*pos, *quat, g.width_m, g.quality, g.angle, g.u, g.v]
            if not all(math.isfinite(float(x)) for x in vals):
                self._counters["rejected_candidates"] += 1
                self._warn("non_finite_pose", f"grasp at (u={g.u:.1f}, v={g.v:.1f}) has a non-finite pose; not published")
                continue
            rows.append(vals + [math.nan if g.fingers_clear is None else float(g.fingers_clear)])
            poses.append(_pose(pos, quat))
        if res.grasps and not rows:
            self._skip("non_finite_pose", "no grasp with a finite pose")
            return

        header = Header(stamp=stamp, frame_id=self._p("target_frame") or cam_frame)
        self._publish(header, rows, poses, res, rgb, image_header)
        t_pub = time.perf_counter()

        self._processed += 1
        self._out_rate.tick()
        timings = dict(res.timings)
        timings.update(
            convert=t_conv - t_start,
            detect=t_det - t_conv,
            transform=t_tf - t_det,
            publish=t_pub - t_tf,
            node_total=t_pub - t_start,
            queue=t_start - pair.received,
            receive_to_publish=t_pub - pair.received,
        )
        # what the ROS layer adds to the core's own stages (conversion, transform, messages, locking)
        timings["node_overhead"] = timings["node_total"] - sum(res.timings.values())
        # stamp -> arrival at the node (camera/driver + transport), when the stamps are wall-clock times
        stamp_s = stamp.sec + stamp.nanosec * 1e-9
        if 0.0 <= pair.received_wall - stamp_s < 10.0:
            timings["stamp_to_receive"] = pair.received_wall - stamp_s
        self._stats.add(timings)
        if self._debug_timings:  # one line per frame (the benchmark pairs them with its end-to-end times)
            self.get_logger().debug(
                f"frame {conv.stamp_to_ns(stamp)} timings_ms " + " ".join(f"{k}={v * 1e3:.3f}" for k, v in sorted(timings.items()))
            )

    def _release_tf(self) -> None:
        """Unsubscribe /tf and /tf_static (each cleanup -> configure used to add another pair) and forget
        the transforms received; the one Buffer stays."""
        if self._tf_listener is not None:
            self._tf_listener.unregister()
            self._tf_listener = None
        if self._tf_buffer is not None:
            self._tf_buffer.clear()

    def _camera_to_target(self, cam_frame: str, stamp):
        """Transform camera optical frame -> target_frame at ``stamp`` (None = publish in the camera frame)."""
        target = self._p("target_frame")
        if not target or target == cam_frame:
            return None
        if self._static_tf is not None:
            return self._static_tf
        from ..core.geometry import Transform

        buf = self._tf_buffer
        if buf is None:
            raise TransformUnavailable("no transform source configured")
        try:
            ts = buf.lookup_transform(target, cam_frame, Time.from_msg(stamp), timeout=Duration(seconds=float(self._p("tf_timeout"))))
        except tf2_ros.TransformException as e:  # Lookup, Connectivity, Extrapolation
            raise TransformUnavailable(f"no transform {cam_frame!r} -> {target!r} at the image stamp: {e}") from e
        t, r = ts.transform.translation, ts.transform.rotation
        q = np.array([r.x, r.y, r.z, r.w], dtype=np.float64)
        n = float(np.linalg.norm(q))
        # tf2 accepts quaternions whose squared norm is within 1% of 1 and composes them unnormalised:
        # normalise (a norm of 1.004 used to fail here as a detector error)
        if not (math.isfinite(n) and n > 0.5 and all(math.isfinite(v) for v in (t.x, t.y, t.z))):
            raise TransformUnavailable(f"transform {cam_frame!r} -> {target!r} is not a rigid transform: t=({t.x}, {t.y}, {t.z}) q={q.tolist()}")
        return Transform((t.x, t.y, t.z), tuple(q / n))

    def _publish(self, header, rows, poses, res, rgb, image_header) -> None:
        with self._pub_lock:
            if not self._active or not self._pubs:
                return
            pubs = self._pubs
            if poses:
                pubs["grasp"].publish(PoseStamped(header=header, pose=poses[0]))
                self._published += 1
            pubs["grasps"].publish(PoseArray(header=header, poses=poses))
            pubs["candidates"].publish(conv.candidates_to_cloud(np.asarray(rows, dtype=np.float64).reshape(-1, len(conv.CANDIDATE_FIELDS)), header))
            if self._p("publish_markers"):
                arr = MarkerArray()
                clear = Marker(header=header, action=Marker.DELETEALL)
                arr.markers.append(clear)
                for i, (row, pose) in enumerate(zip(rows, poses)):
                    arr.markers.append(conv.gripper_marker(header, pose, row[7], row[8], i))
                pubs["markers"].publish(arr)
            if pubs["debug"].get_subscription_count() > 0:
                from ..core.visualize import draw_grasps

                # with view down the ROI and the quality map are the virtual camera's: not drawn on the real image
                virtual = getattr(res, "view", None) is not None
                det = self._detector
                img = draw_grasps(rgb, res.grasps, None if virtual else res.quality_map, None if virtual else res.roi,
                                  fingers=det.cfg.fingers() if det is not None else None)
                pubs["debug"].publish(conv.array_to_image(img, "rgb8", header=image_header))

    # ------------------------------------------------------------------ summary
    def _roi_text(self, det) -> str:
        """How the detector picks the ROI, e.g. ``roi_mode scale at 268.6 network px/m (model metadata)``."""
        if det.cfg.roi is not None:
            return f"fixed box {list(det.cfg.roi)} (roi parameter)"
        if det.cfg.roi_mode == "scale":
            src = "net_px_per_metre parameter" if det.cfg.net_px_per_metre else "model metadata"
            return f"roi_mode scale at {det.px_per_metre:.1f} network px/m ({src})"
        return f"roi_mode {det.cfg.roi_mode}"

    def counters(self) -> dict[str, int]:
        c = dict(self._counters)
        c["dropped_stale"] = self._slot.dropped
        c["unmatched"] = self._pairer.unmatched
        c["unmatched_color"], c["unmatched_depth"] = self._pairer.unmatched_color, self._pairer.unmatched_depth
        c["pending_color"], c["pending_depth"] = self._pairer.pending()
        return c

    def _summary(self) -> None:
        c = self.counters()
        stats = self._stats.summary()
        skipped = {k: c[k] for k in SKIP_REASONS if c.get(k)}
        fin, fout = self._in_rate.rate(), self._out_rate.rate()
        stage_order = ("stamp_to_receive", "convert", "preprocess", "network", "postprocess", "geometry", "publish", "node_overhead", "node_total",
                       "receive_to_publish")
        lat = " ".join(f"{k} {stats[k][0] * 1e3:.1f}/{stats[k][1] * 1e3:.1f}" for k in stage_order if k in stats)
        self.get_logger().info(
            f"in {fin:.1f} fps, out {fout:.1f} fps, processed {self._processed}, grasps {self._published}, "
            f"dropped {c['dropped_stale']} stale + {c['unmatched']} unmatched, skipped {sum(skipped.values())} {skipped or ''}; "
            f"latency ms median/p95: {lat or 'n/a'}"
        )
        if self._active and self._subs and self._pairs == 0:
            color, depth = self._in_rate.total, self._depth_count
            if color and not depth:
                self._warn("no_depth", f"color images arrive but no depth on {self._subs[1].topic_name} (aligned depth enabled?)")
            elif depth and not color:
                self._warn("no_color", f"depth images arrive but no color on {self._subs[0].topic_name}")
            elif color and depth:
                self._warn("no_pairs", f"{color} color and {depth} depth images but no equal stamps: set sync_tolerance "
                           "or publish depth aligned to color")
        st = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: grasp detection", hardware_id="dsc_grasp_ros")
        if not self._configured:
            st.level, st.message = DiagnosticStatus.WARN, "not configured"
        elif skipped and self._processed == 0:
            st.level, st.message = DiagnosticStatus.ERROR, "every frame skipped: " + ", ".join(skipped)
        elif not self._active:
            st.level, st.message = DiagnosticStatus.WARN, "inactive"
        elif fin == 0:
            st.level, st.message = DiagnosticStatus.WARN, "no input frames"
        else:
            st.level, st.message = DiagnosticStatus.OK, f"{fout:.1f} fps"
        kv = {
            "input_fps": f"{fin:.2f}",
            "output_fps": f"{fout:.2f}",
            "received": str(self._in_rate.total),
            "processed": str(self._processed),
            "published_grasps": str(self._published),
        }
        det, roi = self._detector, self._last_roi
        if det is not None:
            kv["roi_mode"] = det.cfg.roi_mode if det.cfg.roi is None else "roi parameter"
            kv["net_px_per_metre"] = f"{det.px_per_metre:.2f}"
        if roi is not None:  # the last processed frame's ROI, full-image pixels
            kv["roi"] = f"{roi.x} {roi.y} {roi.w} {roi.h}"
        kv.update({k: str(v) for k, v in sorted(c.items())})
        for k, (med, p95, n) in sorted(stats.items()):
            kv[f"{k}_ms_median"] = f"{med * 1e3:.3f}"
            kv[f"{k}_ms_p95"] = f"{p95 * 1e3:.3f}"
        st.values = [KeyValue(key=k, value=v) for k, v in kv.items()]
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[st]))


def _pose(pos, quat) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(a) for a in pos)
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (float(a) for a in quat)
    return p


def main(args=None) -> int:
    rclpy.init(args=args)
    node = GraspNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    rc = 0
    try:
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("configure failed; the node stays unconfigured (fix the parameters, then configure)")
            elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("activate failed")
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # rclpy's deferred SIGINT/SIGTERM handler shuts the context down asynchronously; a spin that
        # is just building its wait set then raises RCLError "the given context is not valid" (a
        # known race: ros2/rclpy#398, ros2/ros2cli#854 catches it the same way; still in rclpy's
        # Jazzy executors.py, checked against the 7.1.x wheels used here). That is a shutdown, not
        # an error; anything raised while the context is still valid is.
        if rclpy.ok():
            raise
    finally:
        try:
            node._active = False
            node._teardown()
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    import sys

    sys.exit(main())
